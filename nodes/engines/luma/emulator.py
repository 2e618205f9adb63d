"""A local stand-in for the Luma Agents API (Ray 3.2), faithful enough that the official
``luma_agents`` client runs against it unchanged.

Tests (and users' own CI) start it on a loopback port::

    with LumaEmulator(api_keys={"test-key": {"hdr": True}}) as emu:
        client = luma_agents.Luma(base_url=emu.base_url, auth_token="test-key")

or from a shell: ``python -m comfyui_director.nodes.engines.luma.emulator --port 8911 --key test-key``.

Rooms: this module (the emulator object: settings, test controls, routing), ``emulator_http``
(the loopback server and replies), ``emulator_jobs`` (faults and the job state machine),
``emulator_validate`` (create-request rules), ``emulator_files`` (Files API), ``emulator_media``
(the output files).

What it reproduces (contract: shared/research/luma-api.md §A1, §A4):
- ``POST /v1/generations``, ``GET /v1/generations/{id}``, the Files API (JSON presigned upload with a
  PUT back to the emulator, multipart upload, complete, get, cursor-paginated list, soft delete).
- ``Authorization: Bearer`` (401), per-key flags (``hdr`` access -> 403, ``suspended`` -> 403,
  ``balance`` in credits -> 402), ``X-Request-Id`` (echoed or minted) and ``X-API-Version`` on
  every response, ``X-RateLimit-Limit``/``-Remaining`` on accepted creates.
- Validation before any job exists: malformed JSON -> 400; schema, ranges, combinations and bad
  media -> 422 with ``{"detail": "<field>: <reason>"}``; media over 50 MB (``media_max_bytes``)
  -> 413. Unknown fields are rejected (422) unless ``strict=False``. Prices come from the shot
  request's credit tables (nodes/shot/request.py): HDR x2, HDR+EXR x3, edit per started 5 s of
  source, reframe per started output second.
- Jobs go queued -> processing -> completed | failed on the emulator's clock (evaluated when
  read, so no background threads); ``advance(seconds)`` moves that clock for tests.
- Outputs are real files (see emulator_media), rendered on first download and cached per shape:
  ``output = [{"type": "video", "url"}]`` plus ``{"type": "exr", "url"}`` with ``exr_export``
  (zip by default, ``exr_shape="single"`` for one multi-part EXR; ``exr_first=True`` lists it
  first). URLs are presigned-style: re-signed on every GET of the generation, each valid
  ``url_ttl_s``; 403 after expiry, 404 for unknown tokens.
- Rate limits on ``POST /generations`` only: sliding 60 s RPM window and max concurrent
  non-terminal jobs per key -> 429 with ``Retry-After``.
- Faults (:class:`Fault`) from Python (``inject``) or over HTTP for users' CI, unauthenticated
  on loopback: ``POST /_emulator/faults`` (a Fault object or a list), ``DELETE /_emulator/faults``,
  ``GET /_emulator/state`` (what :meth:`LumaEmulator.state` returns), ``POST /_emulator/advance``
  ``{"seconds": s}``.

Decisions where the service is not documented:
- A 5 s clip has 121 frames (frames 0..120, the keyframe_indexes grid), a 10 s clip 241;
  ``include_last_frame=False`` gives 120/240 instead.
- The output aspect is the requested one even for start/end-frame video (the service is said to
  follow the anchor image there; not emulated). Extend (start_frame/end_frame by generation_id)
  makes a new 5 s clip; its SDR-only rule is not enforced.
- Media URLs are plain GET (HEAD too) without Range support.
- video_edit / video_reframe output lasts as long as the source (rounded to 24 fps frames); an
  edit keeps the source's aspect (nearest Ray aspect). A reframe of an uploaded (or inline) source
  is the real thing, minus the AI: the source placed at ``video.source_position`` (centred fit
  when omitted) by Director's reframe geometry, the rest filled, silent, with the SOURCE's frame
  count and frame rate, rendered in the background from the moment the job is created (a download
  waits for it). A reframe to the source's own aspect (within 2 %) is refused (422). Source length comes from the upload or
  generation it refers to. An edit of an uploaded (or inline) source is likewise the source itself,
  restyled (a colour grade and posterisation, Director's Draft restyle) at the requested size,
  silent, with the source's frame count and rate. A plain ``url`` source cannot be fetched here (no network) and is taken
  as ``url_video_s`` seconds long.
- Images (uni-1, types image/image_edit/layering) are not emulated: 422 saying so.
- Failed jobs are refunded (``billed_jobs`` drops, the key's balance is restored).
- ``requests`` paths are relative to ``/v1`` for API routes ("/generations"); other routes keep
  their own prefix ("/_media/...", "/_uploads/..."). A dropped connection is recorded with status 0.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import asdict, fields
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .emulator_files import FilesApi
from .emulator_http import API_VERSION, ApiError, _Handler, _json_reply, _load_json, _Reply, _Server  # noqa: F401  (API_VERSION: public)
from .emulator_jobs import Fault, Jobs, Seen
from .emulator_validate import FAILURE_REASONS, MEDIA_MAX_BYTES, Validation  # noqa: F401


class LumaEmulator(Jobs, Validation, FilesApi):
    """The emulator: a loopback HTTP server plus the bookkeeping tests read.

    ``api_keys`` maps each accepted key to its flags: ``hdr`` (HDR access, default False),
    ``balance`` (credits; None = unlimited), ``suspended``, and per-key ``rpm`` /
    ``max_concurrent`` overriding the emulator-wide limits. A plain list of keys is accepted too.
    """

    def __init__(self, api_keys: Any = None, *, queued_s: float = 0.2, processing_s: float = 0.5,
                 url_ttl_s: float = 3600.0, rpm: int | None = None, max_concurrent: int | None = None,
                 exr_shape: str = "zip", strict: bool = True, file_ingest_s: float = 0.0,
                 upload_ttl_s: float = 3600.0, edit_max_s: float = 18.0, reframe_max_s: float = 30.0,
                 url_video_s: float = 5.0, inline_upload_max: int = 20 * 1024 * 1024,
                 media_max_bytes: int = MEDIA_MAX_BYTES,
                 include_last_frame: bool = True, exr_first: bool = False,
                 host: str = "127.0.0.1", port: int = 0):
        if exr_shape not in ("zip", "single"):
            raise ValueError(f"exr_shape must be 'zip' or 'single', not {exr_shape!r}")
        if api_keys is None:
            api_keys = {"test-key": {"hdr": True}}
        if not isinstance(api_keys, dict):
            api_keys = {k: {} for k in api_keys}
        self._keys = {k: dict(v or {}) for k, v in api_keys.items()}
        self._balances = {k: v.get("balance") for k, v in self._keys.items()}
        self.queued_s, self.processing_s = float(queued_s), float(processing_s)
        self.url_ttl_s, self.upload_ttl_s = float(url_ttl_s), float(upload_ttl_s)
        self.rpm, self.max_concurrent = rpm, max_concurrent
        self.exr_shape, self.strict = exr_shape, strict
        self.file_ingest_s = float(file_ingest_s)
        self.edit_max_s, self.reframe_max_s, self.url_video_s = float(edit_max_s), float(reframe_max_s), float(url_video_s)
        self.inline_upload_max, self.media_max_bytes = int(inline_upload_max), int(media_max_bytes)
        self.include_last_frame, self.exr_first = include_last_frame, exr_first
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._holding = self._releases = 0
        self.endless_bytes = 0  # bytes the 'endless' download faults got out
        self._offset = 0.0
        self._jobs: dict[str, dict] = {}
        self._files: dict[str, dict] = {}
        self._file_seq = 0
        self._tokens: dict[str, dict] = {}
        self._faults: list[Fault] = []
        self._creates: dict[str, list[float]] = {}
        self._requests: list[Seen] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._upload_dir: Path | None = None

    # ----- lifecycle -------------------------------------------------------------------------
    def start(self) -> "LumaEmulator":
        """Start serving on a free loopback port (idempotent)."""
        if self._server is not None:
            return self
        self._upload_dir = Path(tempfile.mkdtemp(prefix="luma-emulator-uploads-"))
        server = _Server((self._host, self._port), _Handler)
        server.daemon_threads = True
        server.block_on_close = False
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="luma-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and remove uploaded bytes (cached outputs stay for the process)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with self._changed:
            self._changed.notify_all()  # held requests go on
        if self._upload_dir is not None:
            shutil.rmtree(self._upload_dir, ignore_errors=True)

    def __enter__(self) -> "LumaEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL of the server ("http://127.0.0.1:PORT")."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; use `with LumaEmulator() as emu:` or start()")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """API base URL, what ``LUMA_BASE_URL`` / ``base_url=`` take ("http://127.0.0.1:PORT/v1")."""
        return self.url + "/v1"

    # ----- test controls ---------------------------------------------------------------------
    def now(self) -> float:
        """The emulator's monotonic clock (moved by :meth:`advance`)."""
        return time.monotonic() + self._offset

    def _wall(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward: jobs progress, URLs and rate windows age."""
        with self._lock:
            self._offset += float(seconds)

    def inject(self, *faults: Fault) -> None:
        """Queue faults (copies); each applies to the next matching requests (or jobs), in order."""
        with self._lock:
            self._faults.extend(Fault(**asdict(f)) for f in faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return [Fault(**asdict(f)) for f in self._faults]

    def set_balance(self, key: str, credits: int | None) -> None:
        """Set a key's balance in credits (None: unlimited)."""
        with self._lock:
            self._balances[key] = credits

    def balance(self, key: str) -> int | None:
        with self._lock:
            return self._balances.get(key)

    @property
    def generations(self) -> list[dict]:
        """Every created generation, as the API shows it now, in creation order."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [self._public(job, sign=False) for job in jobs]

    def generation(self, generation_id: str) -> dict:
        with self._lock:
            job = self._jobs[generation_id]
        return self._public(job, sign=False)

    @property
    def jobs_created(self) -> int:
        with self._lock:
            return len(self._jobs)

    @property
    def billed_jobs(self) -> int:
        """Jobs that cost money: every created job except failed (refunded) ones."""
        with self._lock:
            now = self.now()
            return sum(1 for job in self._jobs.values() if self._state(job, now) != "failed")

    @property
    def credits_billed(self) -> int:
        with self._lock:
            now = self.now()
            return sum(job["credits"] for job in self._jobs.values() if self._state(job, now) != "failed")

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._requests)

    @property
    def files(self) -> list[dict]:
        with self._lock:
            return [self._file_public(f) for f in self._files.values()]

    def state(self) -> dict:
        """Everything a CI check may want, as JSON-ready data (also ``GET /_emulator/state``)."""
        return {
            "generations": self.generations,
            "jobs_created": self.jobs_created,
            "billed_jobs": self.billed_jobs,
            "credits_billed": self.credits_billed,
            "requests": [list(r) for r in self.requests],
            "faults": [asdict(f) for f in self.pending_faults],
            "files": self.files,
            "balances": {f"key {i + 1}": v for i, (k, v) in enumerate(self._balances.items())},
        }

    # ----- request routing -------------------------------------------------------------------
    def _take_fault(self, route: str, *, kind: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if kind == "job":
                    hit = f.route == "job"
                elif kind == "after_create":
                    hit = f.creates_first and f.matches(route)
                else:
                    hit = f.route != "job" and not f.creates_first and f.matches(route)
                if hit:
                    f.times -= 1
                    if f.times <= 0:
                        self._faults.remove(f)
                    return f
        return None

    def _record(self, method: str, path: str, status: int) -> None:
        with self._changed:
            self._requests.append(Seen(method, path, status))
            self._changed.notify_all()

    def _hold(self) -> None:
        """Hold this request (its body was read) until release()."""
        with self._changed:
            self._holding += 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._releases > 0 or self._server is None)
            self._releases = max(0, self._releases - 1)
            self._holding -= 1

    def wait_held(self, timeout: float = 60.0) -> bool:
        """Wait until a request is held by a ``hold`` fault (True), or ``timeout`` passes."""
        with self._changed:
            return self._changed.wait_for(lambda: self._holding > 0, timeout)

    def release(self, count: int = 1) -> None:
        """Let ``count`` held requests go on."""
        with self._changed:
            self._releases += count
            self._changed.notify_all()

    def wait_for(self, condition, timeout: float = 60.0) -> bool:
        """Wait until ``condition()`` holds, re-checked whenever a request is answered or a job made."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))  # job states move with the clock too
        return True

    def _handle(self, method: str, raw_path: str, headers, body: bytes | Path) -> tuple[str, _Reply]:
        """Answer one request; returns (recorded path, reply). ``body`` is bytes, or the path of
        a spooled upload for PUTs to upload URLs."""
        parts = urlsplit(raw_path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        api = path == "/v1" or path.startswith("/v1/")
        rel = path[3:] or "/" if api else path
        route = f"{method} {rel}"
        try:
            if rel.startswith("/_emulator/"):
                return rel, self._control(method, rel, body)
            fault = self._take_fault(route, kind="pre")
            if fault is not None:
                if fault.hold:
                    self._hold()
                if fault.delay_s:
                    time.sleep(fault.delay_s)
                if rel.startswith("/_media/") and (fault.redirect_to or fault.endless or fault.garbage
                                                   or fault.stall_s):
                    return rel, self._media_fault(fault, rel)
                if fault.drop:
                    return rel, _Reply(0, drop=True)
                if fault.status:
                    extra = {}
                    if fault.retry_after is not None:
                        ra = fault.retry_after
                        extra["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
                    raise ApiError(int(fault.status), fault.detail or f"injected fault: HTTP {fault.status}", extra)
            if rel.startswith("/_media/") and method in ("GET", "HEAD"):
                return rel, self._serve_media(rel)
            if rel.startswith("/_uploads/") and method == "PUT":
                return rel, self._receive_upload(rel, query, headers, body)
            if not api:
                raise ApiError(404, "Not Found")
            key = self._authenticate(headers)
            return rel, self._api(method, rel, query, headers, body, key, route)
        except ApiError as e:
            return rel, _json_reply(e.status, {"detail": e.detail}, e.headers)

    def _authenticate(self, headers) -> str:
        auth = headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if not auth:
            raise ApiError(401, "Missing Authorization header; send 'Authorization: Bearer <API key>'.")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Malformed Authorization header; expected 'Bearer <API key>'.")
        key = token.strip()
        if key not in self._keys:
            raise ApiError(401, "Invalid API key.")
        if self._keys[key].get("suspended"):
            raise ApiError(403, "This API key's account is suspended.")
        return key

    def _api(self, method, rel, query, headers, body, key, route) -> _Reply:
        segs = [s for s in rel.split("/") if s]
        if segs == ["generations"]:
            if method != "POST":
                raise ApiError(405, "Method Not Allowed")
            return self._create_generation(key, body, route)
        if len(segs) == 2 and segs[0] == "generations":
            if method != "GET":
                raise ApiError(405, "Method Not Allowed")
            return _json_reply(200, self._get_generation(key, segs[1]))
        if segs == ["files"]:
            if method == "POST":
                return self._create_file(key, headers, body)
            if method == "GET":
                return _json_reply(200, self._list_files(key, query))
            raise ApiError(405, "Method Not Allowed")
        if len(segs) == 2 and segs[0] == "files":
            if method == "GET":
                return _json_reply(200, self._file_public(self._own_file(key, segs[1])))
            if method == "DELETE":
                self._delete_file(key, segs[1])
                return _Reply(204)
            raise ApiError(405, "Method Not Allowed")
        if len(segs) == 3 and segs[0] == "files" and segs[2] == "complete":
            if method != "POST":
                raise ApiError(405, "Method Not Allowed")
            return _json_reply(200, self._complete_file(key, segs[1]))
        raise ApiError(404, "Not Found")

    def _control(self, method: str, rel: str, body) -> _Reply:
        if rel == "/_emulator/state" and method == "GET":
            return _json_reply(200, self.state())
        if rel == "/_emulator/faults" and method == "POST":
            data = _load_json(body)
            items = data if isinstance(data, list) else [data]
            known = {f.name for f in fields(Fault)}
            try:
                faults = [Fault(**{k: v for k, v in item.items() if k in known}) for item in items]
                bad = [k for item in items for k in item if k not in known]
                if bad:
                    raise ValueError(f"unknown Fault fields: {', '.join(bad)}")
            except (TypeError, ValueError, AttributeError) as e:
                raise ApiError(422, f"fault: {e}") from None
            self.inject(*faults)
            return _json_reply(201, {"faults": [asdict(f) for f in self.pending_faults]})
        if rel == "/_emulator/faults" and method == "DELETE":
            self.clear_faults()
            return _Reply(204)
        if rel == "/_emulator/advance" and method == "POST":
            data = _load_json(body)
            seconds = data.get("seconds") if isinstance(data, dict) else None
            if not isinstance(seconds, (int, float)) or seconds < 0:
                raise ApiError(422, "seconds: give a number >= 0")
            self.advance(seconds)
            return _json_reply(200, {"advanced_s": seconds})
        raise ApiError(404, "Not Found")


def main(argv: list[str] | None = None) -> None:
    """Serve the emulator until interrupted; prints the base URL first."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m comfyui_director.nodes.engines.luma.emulator",
                                description="Local Luma Agents API (Ray 3.2) emulator for tests and CI.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8911)
    p.add_argument("--key", action="append", help="accepted API key (repeatable; default test-key)")
    p.add_argument("--no-hdr", action="store_true", help="keys lack HDR access (HDR requests get 403)")
    p.add_argument("--balance", type=int, default=None, help="credits per key (default: unlimited)")
    p.add_argument("--queued-s", type=float, default=2.0)
    p.add_argument("--processing-s", type=float, default=5.0)
    p.add_argument("--url-ttl-s", type=float, default=3600.0)
    p.add_argument("--rpm", type=int, default=None)
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument("--exr-shape", choices=("zip", "single"), default="zip")
    p.add_argument("--lenient", action="store_true", help="ignore unknown fields instead of 422")
    a = p.parse_args(argv)
    keys = {k: {"hdr": not a.no_hdr, "balance": a.balance} for k in (a.key or ["test-key"])}
    emu = LumaEmulator(keys, queued_s=a.queued_s, processing_s=a.processing_s, url_ttl_s=a.url_ttl_s, rpm=a.rpm,
                       max_concurrent=a.max_concurrent, exr_shape=a.exr_shape, strict=not a.lenient,
                       host=a.host, port=a.port)
    with emu:
        print(emu.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
