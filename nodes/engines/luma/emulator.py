"""A local stand-in for the Luma Agents API (Ray 3.2), faithful enough that the official
``luma_agents`` client runs against it unchanged.

Tests (and users' own CI) start it on a loopback port::

    with LumaEmulator(api_keys={"test-key": {"hdr": True}}) as emu:
        client = luma_agents.Luma(base_url=emu.base_url, auth_token="test-key")

or from a shell: ``python -m comfyui_director.nodes.engines.luma.emulator --port 8911 --key test-key``.

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

import base64
import binascii
import email.parser
import email.policy
import fnmatch
import json
import math
import shutil
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from ...shot.request import (
    CREDITS_GENERATE,
    CREDITS_MODIFY,
    CREDITS_REFRAME_PER_SECOND,
    FPS,
    PROMPT_MAX,
    RESOLUTIONS,
    output_size,
)
from . import emulator_media as media

API_VERSION = "2026-04-01"
MODELS = ("uni-1", "uni-1-max", "ray-3.2")
TYPES = ("image", "image_edit", "video", "video_edit", "video_reframe", "layering")
VIDEO_TYPES = ("video", "video_edit", "video_reframe")
ALL_ASPECTS = ("3:1", "2:1", "21:9", "16:9", "4:3", "3:2", "1:1", "3:4", "2:3", "9:16", "1:2", "1:3")
RAY_ASPECTS = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
DURATIONS = {"5s": 5, "10s": 10}
EDIT_STRENGTHS = tuple(f"{k}_{i}" for k in ("adhere", "flex", "reimagine") for i in (1, 2, 3))
FAILURE_REASONS = {
    "content_moderated": "The request was blocked by content moderation.",
    "generation_failed": "The generation failed; retrying the same request may succeed.",
    "budget_exhausted": "The account budget was exhausted during generation.",
    "output_not_found": "The generated output could not be found; retry the request.",
    "image_too_large": "An input image is too large.",
    "unsupported_format": "An input is in an unsupported format.",
    "corrupt_input": "An input could not be decoded.",
    "invalid_request": "The request was invalid for this model.",
    "rate_limited": "The job was rate limited upstream.",
}
MEDIA_MAX_BYTES = 50 * 1024 * 1024
BODY_MAX_BYTES = 96 * 1024 * 1024
KEYFRAMES_MAX = 64

_TOP = {"prompt", "model", "type", "aspect_ratio", "source", "video", "image_ref", "style", "output_format",
        "web_search", "layering", "user_id"}
_IMAGE_ONLY = ("image_ref", "style", "output_format", "web_search", "layering")
_VIDEO = {"duration", "edit", "end_frame", "exr_export", "hdr", "keyframe_indexes", "keyframes", "loop",
          "resolution", "source_position", "start_frame"}
_EDIT = {"auto_controls", "controls", "keyframe_indexes", "keyframes", "strength"}
_CONTROLS = {"depth": {"enabled", "blur"}, "face": {"enabled"}, "normals": {"enabled", "augmentation"},
             "pose": {"enabled", "strength"}, "trajectory": {"enabled", "sparsity"}}
_CONTROL_FLOATS = {"depth": "blur", "normals": "augmentation", "trajectory": "sparsity"}
_REF = {"url", "data", "generation_id", "file_id", "media_type"}
_POSITION = ("x_norm", "y_norm", "w_norm", "h_norm")
_FILE_FIELDS = {"mime_type", "size_bytes", "expires_at", "filename", "purpose", "user_id"}


class ApiError(Exception):
    """A synchronous error response: ``{"detail": detail}`` with ``status``."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


@dataclass
class Fault:
    """One injected fault; applies to the next ``times`` requests matching ``route``.

    ``route`` is "METHOD /path" relative to ``/v1`` with ``*`` wildcards ("GET /generations/*"),
    or "job" for the next created jobs. Set one behaviour:
    ``status`` (an error response, with ``Retry-After`` when ``retry_after`` is set),
    ``delay_s`` (answer normally but late; with ``status``, late then the error),
    ``drop`` (close the connection without handling the request),
    ``drop_after_create`` (the job is created and billed, then the connection is closed without
    a response), or, with route "job", ``failure_code`` (the job ends failed with that code).
    """

    route: str = "POST /generations"
    status: int | None = None
    times: int = 1
    retry_after: float | None = None
    delay_s: float = 0.0
    drop: bool = False
    drop_after_create: bool = False
    failure_code: str | None = None
    detail: str | None = None

    def __post_init__(self):
        if self.times < 1:
            raise ValueError("Fault.times must be at least 1")
        if self.failure_code is not None:
            if self.failure_code not in FAILURE_REASONS:
                raise ValueError(f"unknown failure_code {self.failure_code!r}; use one of {', '.join(FAILURE_REASONS)}")
            if self.route != "job":
                raise ValueError("a failure_code fault needs route='job'")
        elif self.route == "job":
            raise ValueError("route='job' needs a failure_code")
        if self.status is not None and not 400 <= int(self.status) <= 599:
            raise ValueError(f"Fault.status must be an HTTP error status, not {self.status}")
        if self.drop_after_create and self.route != "POST /generations":
            raise ValueError("drop_after_create applies to route 'POST /generations'")
        if self.drop_after_create and (self.status or self.drop):
            raise ValueError("drop_after_create cannot be combined with status or drop")
        if not (self.status or self.delay_s or self.drop or self.drop_after_create or self.failure_code):
            raise ValueError("a Fault needs status, delay_s, drop, drop_after_create or failure_code")

    def matches(self, route: str) -> bool:
        return fnmatch.fnmatchcase(route, self.route)


class Seen(NamedTuple):
    """One request as the emulator saw it (status 0: the connection was dropped)."""

    method: str
    path: str
    status: int


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict | None = None
    file: Path | None = None
    drop: bool = False


def _json_reply(status: int, obj: Any, headers: dict | None = None) -> _Reply:
    return _Reply(status, json.dumps(obj).encode(), headers=headers)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso(value: str, field: str) -> float:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ApiError(422, f"{field}: {value!r} is not an ISO 8601 timestamp") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _nearest_aspect(width: int, height: int) -> str:
    ratio = width / height
    return min(RAY_ASPECTS, key=lambda a: abs(math.log(ratio * int(a.split(":")[1]) / int(a.split(":")[0]))))


class _Server(ThreadingHTTPServer):
    """Loopback server sized for many jobs of one graph at once, quiet about the connections
    that faults drop on purpose."""

    request_queue_size = 128

    def handle_error(self, request, client_address):
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class LumaEmulator:
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
                    hit = f.drop_after_create and f.matches(route)
                else:
                    hit = f.route != "job" and not f.drop_after_create and f.matches(route)
                if hit:
                    f.times -= 1
                    if f.times <= 0:
                        self._faults.remove(f)
                    return f
        return None

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._requests.append(Seen(method, path, status))

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
                if fault.delay_s:
                    time.sleep(fault.delay_s)
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

    # ----- generations -----------------------------------------------------------------------
    def _limits(self, key: str) -> tuple[int | None, int | None]:
        flags = self._keys[key]
        return flags.get("rpm", self.rpm), flags.get("max_concurrent", self.max_concurrent)

    def _check_rate(self, key: str, now: float) -> dict[str, str]:
        rpm, _ = self._limits(key)
        window = [t for t in self._creates.get(key, []) if now - t < 60.0]
        self._creates[key] = window
        if rpm is not None and len(window) >= rpm:
            wait = max(1, math.ceil(60.0 - (now - window[0])))
            raise ApiError(429, f"Rate limit exceeded: {rpm} requests per minute.",
                           {"Retry-After": str(wait), "X-RateLimit-Limit": str(rpm), "X-RateLimit-Remaining": "0"})
        self._check_concurrency(key, now)
        window.append(now)
        if rpm is None:
            return {}
        return {"X-RateLimit-Limit": str(rpm), "X-RateLimit-Remaining": str(max(0, rpm - len(window)))}

    def _check_concurrency(self, key: str, now: float) -> None:
        _, concurrent = self._limits(key)
        if concurrent is None:
            return
        running = [j for j in self._jobs.values() if j["key"] == key and self._state(j, now) in ("queued", "processing")]
        if len(running) >= concurrent:
            wait = max(1, math.ceil(min(j["t0"] + j["queued_s"] + j["processing_s"] for j in running) - now))
            raise ApiError(429, f"Too many concurrent jobs: the limit is {concurrent} queued or processing.",
                           {"Retry-After": str(wait)})

    def _create_generation(self, key: str, body, route: str) -> _Reply:
        with self._lock:
            rate_headers = self._check_rate(key, self.now())
        plan = self._validate(key, _load_json(body))
        with self._lock:
            self._check_concurrency(key, self.now())  # again: parallel creates validated meanwhile
            balance = self._balances.get(key)
            if balance is not None and balance < plan["credits"]:
                raise ApiError(402, f"Insufficient balance: this generation costs {plan['credits']} credits, "
                                    f"the balance is {balance}.")
            if balance is not None:
                self._balances[key] = balance - plan["credits"]
            fail = self._take_fault("job", kind="job")
            gid = str(uuid.uuid4())
            job = {"id": gid, "key": key, "created_at": _iso(self._wall()), "t0": self.now(),
                   "queued_s": self.queued_s, "processing_s": self.processing_s,
                   "fate": fail.failure_code if fail else "completed", "refunded": False, "outputs": None, **plan}
            self._jobs[gid] = job
        if job.get("reframe", {}).get("source") is not None and job["fate"] == "completed":
            # rendered while the job is queued/processing, as the service would; a download waits for it
            threading.Thread(target=self._reframed, args=(job,), daemon=True, name="emulator-reframe").start()
        reply = _json_reply(201, self._public(job, sign=False, as_created=True), rate_headers)
        if self._take_fault(route, kind="after_create") is not None:
            return _Reply(0, drop=True)
        return reply

    def _get_generation(self, key: str, gid: str) -> dict:
        with self._lock:
            job = self._jobs.get(gid)
            if job is None or job["key"] != key:
                raise ApiError(404, "Generation not found.")
        return self._public(job, sign=True)

    def _state(self, job: dict, now: float) -> str:
        """queued -> processing -> completed|failed by the clock; refunds a failure once."""
        elapsed = now - job["t0"]
        if elapsed < job["queued_s"]:
            return "queued"
        if elapsed < job["queued_s"] + job["processing_s"]:
            return "processing"
        if job["fate"] == "completed":
            return "completed"
        if not job["refunded"]:
            job["refunded"] = True
            if self._balances.get(job["key"]) is not None:
                self._balances[job["key"]] += job["credits"]
        return "failed"

    def _public(self, job: dict, *, sign: bool, as_created: bool = False) -> dict:
        with self._lock:
            state = "queued" if as_created else self._state(job, self.now())
            out = {"id": job["id"], "created_at": job["created_at"], "model": job["model"], "state": state,
                   "type": job["type"], "failure_code": None, "failure_reason": None, "output": None}
            if state == "failed":
                out["failure_code"] = job["fate"]
                out["failure_reason"] = FAILURE_REASONS[job["fate"]]
            elif state == "completed":
                if sign or job["outputs"] is None:
                    job["outputs"] = self._sign_outputs(job)
                out["output"] = [dict(o) for o in job["outputs"]]
        return out

    def _sign_outputs(self, job: dict) -> list[dict]:
        """Fresh presigned-style URLs for a job's outputs; files are rendered on first download."""
        w, h, frames, hdr = job["width"], job["height"], job["frames"], job["hdr"]
        if job.get("reframe", {}).get("source") is not None:
            outputs = [self._sign(job, "video", ".mp4", "video/mp4", lambda: self._reframed(job))]
        elif job.get("edit", {}).get("source") is not None:
            outputs = [self._sign(job, "video", ".mp4", "video/mp4", lambda: self._edited(job))]
        else:
            outputs = [self._sign(job, "video", ".mp4", "video/mp4", lambda: media.synth_mp4(w, h, frames, hdr))]
        if job["exr"]:
            shape = self.exr_shape
            suffix, ctype = (".zip", "application/zip") if shape == "zip" else (".exr", "image/x-exr")
            exr = self._sign(job, "exr", suffix, ctype, lambda: media.synth_exr(w, h, frames, shape))
            outputs.insert(0 if self.exr_first else 1, exr)
        return outputs

    def _sign(self, job: dict, kind: str, suffix: str, content_type: str, render) -> dict:
        token = uuid.uuid4().hex
        self._tokens[token] = {"job": job["id"], "render": render, "expires": self.now() + self.url_ttl_s,
                               "content_type": content_type}
        return {"type": kind, "url": f"{self.url}/_media/{token}/{job['id'][:8]}{suffix}?X-Amz-Expires={int(self.url_ttl_s)}"}

    def _edited(self, job: dict) -> Path:
        """A video_edit job's output: the uploaded source restyled (graded, posterised) at the
        requested size, silent, with the source's frame count and rate (cached per job)."""
        with self._lock:
            lock = job.setdefault("render_lock", threading.Lock())
        with lock:
            if job.get("rendered") is None:
                job["rendered"] = media.edit_mp4(job["edit"]["source"], job["width"], job["height"], job["hdr"])
        return job["rendered"]

    def _reframed(self, job: dict) -> Path:
        """A reframe job's output: the uploaded source placed at ``source_position`` (centred fit when
        omitted) in the requested frame, the rest filled; silent, at the source's rate (cached per job)."""
        with self._lock:
            lock = job.setdefault("render_lock", threading.Lock())
        with lock:
            if job.get("rendered") is None:
                job["rendered"] = media.reframe_mp4(job["reframe"]["source"], job["aspect_ratio"], job["resolution"],
                                                    job["reframe"]["position"])
        return job["rendered"]

    def _source_file(self, key: str, ref: dict) -> Path | None:
        """The file behind a video source reference, when it is here (an upload or inline data)."""
        if ref.get("file_id"):
            f = self._own_file(key, ref["file_id"], where="source.file_id", status=422)
            return f["path"]
        if ref.get("data"):
            path = self._upload_dir / f"inline-{uuid.uuid4().hex}.video"
            path.write_bytes(base64.b64decode(ref["data"]))
            return path
        return None

    def _serve_media(self, rel: str) -> _Reply:
        segs = rel.split("/")
        with self._lock:
            entry = self._tokens.get(segs[2]) if len(segs) >= 3 else None
            if entry is None:
                raise ApiError(404, "NoSuchKey: the object does not exist.")
            if self.now() >= entry["expires"]:
                return _Reply(403, b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>"
                                   b"<Message>Request has expired</Message></Error>", "application/xml")
        return _Reply(200, content_type=entry["content_type"], file=entry["render"]())

    # ----- validation ------------------------------------------------------------------------
    def _unknown(self, obj: dict, allowed, where: str) -> None:
        if self.strict:
            extra = sorted(set(obj) - set(allowed))
            if extra:
                raise ApiError(422, f"{where}{extra[0]}: extra inputs are not permitted.")

    def _validate(self, key: str, body: Any) -> dict:
        """Every documented rule, in the order a request is read; returns the job plan."""
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        body = {k: v for k, v in body.items() if v is not None}
        self._unknown(body, _TOP, "")
        model = _enum(body, "model", MODELS, "")
        gtype = _enum(body, "type", TYPES, "")
        if gtype is None:
            gtype = "video" if model == "ray-3.2" else "image"
        if model is None:
            model = "ray-3.2" if gtype in VIDEO_TYPES else "uni-1"
        if (model == "ray-3.2") != (gtype in VIDEO_TYPES):
            raise ApiError(422, f"model: {model} does not support type '{gtype}' "
                                f"(ray-3.2 makes video, video_edit, video_reframe; uni-1 makes images).")
        if gtype not in VIDEO_TYPES:
            raise ApiError(422, f"type: '{gtype}' is not emulated (the Luma emulator covers Ray 3.2 video only).")
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise ApiError(422, "prompt: field required (a string of 1 to 6000 characters).")
        if len(prompt) > PROMPT_MAX:
            raise ApiError(422, f"prompt: {len(prompt)} characters, at most {PROMPT_MAX} allowed.")
        if not prompt.strip() and gtype != "video_reframe":
            raise ApiError(422, "prompt: must not be empty (1 to 6000 characters).")
        for name in _IMAGE_ONLY:
            if name in body:
                raise ApiError(422, f"{name}: only valid for image types, not type '{gtype}'.")
        if "user_id" in body and not isinstance(body["user_id"], str):
            raise ApiError(422, "user_id: must be a string.")
        aspect = _enum(body, "aspect_ratio", ALL_ASPECTS, "")
        if aspect is not None and aspect not in RAY_ASPECTS:
            raise ApiError(422, f"aspect_ratio: '{aspect}' is not available for ray-3.2; use one of {', '.join(RAY_ASPECTS)}.")

        video = body.get("video", {})
        if not isinstance(video, dict):
            raise ApiError(422, "video: must be an object.")
        video = {k: v for k, v in video.items() if v is not None}
        self._unknown(video, _VIDEO, "video.")
        resolution = _enum(video, "resolution", RESOLUTIONS, "video.") or "720p"
        duration_name = _enum(video, "duration", tuple(DURATIONS), "video.")
        duration = DURATIONS[duration_name or "5s"]
        loop, hdr, exr = (_bool(video, n, "video.") for n in ("loop", "hdr", "exr_export"))
        for name in ("start_frame", "end_frame", "keyframes", "keyframe_indexes", "loop"):
            if name in video and gtype == "video_reframe":
                raise ApiError(422, f"video.{name}: not valid for type 'video_reframe'.")
        for name in ("keyframes", "keyframe_indexes", "loop", "end_frame"):
            if name in video and gtype == "video_edit":
                raise ApiError(422, f"video.{name}: not valid for type 'video_edit'"
                                    + (" (use video.edit.keyframes)." if name.startswith("keyframe") else "."))
        if "edit" in video and gtype != "video_edit":
            raise ApiError(422, "video.edit: only valid when type is 'video_edit'.")
        if "source_position" in video and gtype != "video_reframe":
            raise ApiError(422, "video.source_position: only valid when type is 'video_reframe'.")
        if "source" in body and gtype == "video":
            raise ApiError(422, "source: only valid for video_edit and video_reframe (use video.start_frame or video.keyframes).")
        if exr and not hdr:
            raise ApiError(422, "video.exr_export: requires video.hdr=true.")
        if hdr and gtype == "video_reframe":
            raise ApiError(422, "video.hdr: not supported for video_reframe.")
        if hdr and resolution not in ("720p", "1080p"):
            raise ApiError(422, f"video.hdr: requires resolution 720p or 1080p, not {resolution}.")

        plan: dict[str, Any] = {"type": gtype, "model": model, "resolution": resolution, "hdr": hdr, "exr": exr}
        if gtype == "video":
            self._validate_video(key, video, duration, loop, hdr)
            aspect = aspect or "16:9"
            frames = duration * FPS + (1 if self.include_last_frame else 0)
            base = CREDITS_GENERATE[duration][RESOLUTIONS.index(resolution)]
        else:
            if "source" not in body:
                raise ApiError(422, f"source: field required for type '{gtype}'.")
            src = self._ref(key, body["source"], "source", video_source=True)
            if gtype == "video_edit":
                limit = self.edit_max_s
                if src.duration > limit:
                    raise ApiError(422, f"source: the video is {src.duration:.2f} s long; video_edit takes at most {limit:g} s.")
                if src.width and src.height:
                    aspect = _nearest_aspect(src.width, src.height)
                aspect = aspect or "16:9"
                self._validate_edit(key, video, src)
                if "start_frame" in video:
                    self._ref(key, video["start_frame"], "video.start_frame")
                plan["edit"] = {"source": self._source_file(key, body["source"])}
                base = CREDITS_MODIFY[5][RESOLUTIONS.index(resolution)] * max(1, math.ceil(src.duration / 5 - 1e-9))
            else:
                limit = self.reframe_max_s
                if src.duration > limit:
                    raise ApiError(422, f"source: the video is {src.duration:.2f} s long; video_reframe takes at most {limit:g} s.")
                if aspect is None:
                    raise ApiError(422, "aspect_ratio: field required for type 'video_reframe'.")
                if resolution == "1080p" and aspect in ("9:16", "3:4"):
                    raise ApiError(422, f"video.resolution: 1080p reframe to {aspect} is coming soon; use 720p or a landscape aspect.")
                if "source_position" in video:
                    _source_position(video["source_position"], self.strict)
                if src.width and src.height and _nearest_aspect(src.width, src.height) == aspect \
                        and abs((src.width / src.height) / _ratio(aspect) - 1) <= 0.02:
                    raise ApiError(422, f"aspect_ratio: the source is already {aspect} ({src.width}x{src.height}); "
                                        "a reframe needs a different aspect ratio.")
                base = CREDITS_REFRAME_PER_SECOND[RESOLUTIONS.index(resolution)] * max(1, math.ceil(src.duration - 1e-9))
                plan["reframe"] = {"source": self._source_file(key, body["source"]),
                                   "position": video.get("source_position")}
            frames = max(1, int(round(src.duration * FPS)))
            if plan.get("reframe", {}).get("source") is not None or plan.get("edit", {}).get("source") is not None:
                frames = src.frames  # the output keeps the source's frames and rate (see the docstring)
        if hdr and not self._keys[key].get("hdr"):
            raise ApiError(403, "video.hdr: this API key does not have HDR access.")
        width, height = output_size(resolution, aspect)
        plan.update(aspect_ratio=aspect, width=width, height=height, frames=frames,
                    credits=base * (3 if exr else 2 if hdr else 1))
        return plan

    def _validate_video(self, key: str, video: dict, duration: int, loop: bool, hdr: bool) -> None:
        has_kf = "keyframes" in video
        if "keyframe_indexes" in video and not has_kf:
            raise ApiError(422, "video.keyframe_indexes: given without video.keyframes.")
        if has_kf:
            for other in ("start_frame", "end_frame"):
                if other in video:
                    raise ApiError(422, f"video.keyframes: mutually exclusive with video.{other}.")
            if loop:
                raise ApiError(422, "video.keyframes: mutually exclusive with video.loop.")
            self._keyframes(key, video, "video.", last=duration * FPS)
        if loop:
            if duration == 10:
                raise ApiError(422, "video.loop: not supported with duration 10s.")
            if hdr:
                raise ApiError(422, "video.loop: not supported with hdr=true.")
            if "end_frame" in video:
                raise ApiError(422, "video.loop: not supported with video.end_frame.")
        for name in ("start_frame", "end_frame"):
            if name in video:
                if duration != 5:
                    raise ApiError(422, f"video.{name}: start/end-frame video is 5s only, not {duration}s (use video.keyframes for 10s).")
                self._ref(key, video[name], f"video.{name}")

    def _keyframes(self, key: str, holder: dict, where: str, *, last: int | None) -> None:
        refs, indexes = holder.get("keyframes"), holder.get("keyframe_indexes")
        if not isinstance(refs, list) or not 1 <= len(refs) <= KEYFRAMES_MAX:
            raise ApiError(422, f"{where}keyframes: give a list of 1 to {KEYFRAMES_MAX} image references.")
        if not isinstance(indexes, list):
            raise ApiError(422, f"{where}keyframe_indexes: required with {where}keyframes (a list of frame numbers).")
        if len(indexes) != len(refs):
            raise ApiError(422, f"{where}keyframe_indexes: {len(indexes)} indexes for {len(refs)} keyframes; lengths must match.")
        seen = set()
        for i, idx in enumerate(indexes):
            if isinstance(idx, bool) or not isinstance(idx, int):
                raise ApiError(422, f"{where}keyframe_indexes[{i}]: must be an integer.")
            if idx < 0:
                raise ApiError(422, f"{where}keyframe_indexes[{i}]: {idx} is negative.")
            if last is not None and idx > last:
                raise ApiError(422, f"{where}keyframe_indexes[{i}]: {idx} is past the last frame {last} (24 fps grid).")
            if idx in seen:
                raise ApiError(422, f"{where}keyframe_indexes[{i}]: frame {idx} is used twice; indexes must be unique.")
            seen.add(idx)
        for i, ref in enumerate(refs):
            self._ref(key, ref, f"{where}keyframes[{i}]")

    def _validate_edit(self, key: str, video: dict, src: media.MediaInfo) -> None:
        edit = video.get("edit", {})
        if not isinstance(edit, dict):
            raise ApiError(422, "video.edit: must be an object.")
        edit = {k: v for k, v in edit.items() if v is not None}
        self._unknown(edit, _EDIT, "video.edit.")
        auto = _bool(edit, "auto_controls", "video.edit.")
        if auto and ("strength" in edit or "controls" in edit):
            raise ApiError(422, "video.edit.auto_controls: cannot be combined with strength or controls.")
        _enum(edit, "strength", EDIT_STRENGTHS, "video.edit.")
        controls = edit.get("controls", {})
        if not isinstance(controls, dict):
            raise ApiError(422, "video.edit.controls: must be an object.")
        self._unknown(controls, _CONTROLS, "video.edit.controls.")
        for name, ctl in controls.items():
            if ctl is None or name not in _CONTROLS:
                continue
            where = f"video.edit.controls.{name}."
            if not isinstance(ctl, dict):
                raise ApiError(422, f"{where[:-1]}: must be an object.")
            ctl = {k: v for k, v in ctl.items() if v is not None}
            self._unknown(ctl, _CONTROLS[name], where)
            _bool(ctl, "enabled", where)
            if name == "pose":
                _enum(ctl, "strength", ("precise", "coarse"), where)
            if name in _CONTROL_FLOATS and _CONTROL_FLOATS[name] in ctl:
                v = ctl[_CONTROL_FLOATS[name]]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                    raise ApiError(422, f"{where}{_CONTROL_FLOATS[name]}: {v!r} is outside 0..1.")
        if "keyframes" in edit or "keyframe_indexes" in edit:
            if "start_frame" in video:
                raise ApiError(422, "video.edit.keyframes: mutually exclusive with video.start_frame.")
            if "keyframes" not in edit:
                raise ApiError(422, "video.edit.keyframe_indexes: given without video.edit.keyframes.")
            self._keyframes(key, edit, "video.edit.", last=src.frames - 1 if src.frames > 1 else None)

    def _ref(self, key: str, ref: Any, where: str, *, video_source: bool = False) -> media.MediaInfo:
        """Check one ImageRef and return what it points at."""
        if not isinstance(ref, dict):
            raise ApiError(422, f"{where}: must be an object with one of url, data, generation_id, file_id.")
        ref = {k: v for k, v in ref.items() if v is not None}
        self._unknown(ref, _REF, f"{where}.")
        given = [k for k in ("url", "data", "generation_id", "file_id") if k in ref]
        if len(given) != 1:
            raise ApiError(422, f"{where}: provide exactly one of url, data, generation_id, file_id (got {', '.join(given) or 'none'}).")
        kind = "video" if video_source else "image"
        mime = ref.get("media_type")
        if mime is not None and (not isinstance(mime, str) or not mime.startswith(kind + "/")):
            raise ApiError(422, f"{where}.media_type: {mime!r} is not a {kind}/* type here.")
        which = given[0]
        value = ref[which]
        if not isinstance(value, str) or not value:
            raise ApiError(422, f"{where}.{which}: must be a non-empty string.")
        if which == "data":
            if mime is None:
                raise ApiError(422, f"{where}.media_type: required with data.")
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(422, f"{where}.data: not valid base64.") from None
            if len(raw) > self.media_max_bytes:
                raise ApiError(413, f"{where}.data: {len(raw)} bytes; media must be at most {self.media_max_bytes} bytes.")
            try:
                return media.probe_bytes(raw, mime)
            except media.BadMedia as e:
                raise ApiError(422, f"{where}.data: {e}.") from None
        if which == "url":
            if video_source and mime is None:
                raise ApiError(422, f"{where}.media_type: required with url for a video source (e.g. video/mp4).")
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ApiError(422, f"{where}.url: {value!r} is not an http(s) URL.")
            own = self._own_media(value, f"{where}.url")
            if own is not None:
                if own.kind != kind:
                    raise ApiError(422, f"{where}.url: points at a video; an image is needed here.")
                return own
            return media.MediaInfo(kind, 0, 0, int(round(self.url_video_s * FPS)) if video_source else 1,
                                   self.url_video_s if video_source else 0.0)
        if which == "generation_id":
            with self._lock:
                job = self._jobs.get(value)
                state = self._state(job, self.now()) if job else None
            if job is None or job["key"] != key:
                raise ApiError(422, f"{where}.generation_id: generation {value} not found.")
            if state != "completed":
                raise ApiError(422, f"{where}.generation_id: generation {value} is {state}, not completed.")
            return media.MediaInfo("video", job["width"], job["height"], job["frames"], job["frames"] / FPS)
        f = self._own_file(key, value, where=f"{where}.file_id", status=422)
        if f["state"] != "ready":
            raise ApiError(422, f"{where}.file_id: file {value} is {f['state']}, not ready.")
        info = f["info"]
        if info.kind != kind:
            raise ApiError(422, f"{where}.file_id: file {value} is {f['mime_type']}; a {kind} is needed here.")
        return info

    def _own_media(self, url: str, where: str) -> media.MediaInfo | None:
        """A URL this emulator signed (e.g. a previous output) resolves to its media."""
        try:
            root = self.url
        except RuntimeError:
            return None
        if not url.startswith(root + "/_media/"):
            return None
        token = urlsplit(url).path.split("/")[2]
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None or self.now() >= entry["expires"]:
                raise ApiError(422, f"{where}: the URL could not be fetched (expired or unknown).")
            if entry["content_type"] != "video/mp4":
                raise ApiError(422, f"{where}: points at {entry['content_type']}, not a video.")
            job = self._jobs[entry["job"]]
        return media.MediaInfo("video", job["width"], job["height"], job["frames"], job["frames"] / FPS)

    # ----- files -----------------------------------------------------------------------------
    def _create_file(self, key: str, headers, body) -> _Reply:
        ctype = (headers.get("Content-Type") or "").lower()
        now_wall = self._wall()
        if ctype.startswith("multipart/form-data"):
            form, blob = _parse_multipart(headers.get("Content-Type"), body)
            if blob is None:
                raise ApiError(422, "file: the multipart body needs a 'file' part.")
            data, part_type, part_name = blob
            if len(data) > self.inline_upload_max:
                raise ApiError(413, f"file: {len(data)} bytes is over the inline upload cap of "
                                    f"{self.inline_upload_max} bytes; use the presigned (JSON) flow.")
            meta = {"mime_type": form.get("mime_type") or part_type, "size_bytes": len(data),
                    "filename": form.get("filename") or part_name, "purpose": form.get("purpose"),
                    "user_id": form.get("user_id"), "expires_at": form.get("expires_at")}
            record = self._new_file(key, meta, now_wall)
            path = self._upload_dir / record["id"]
            path.write_bytes(data)
            with self._lock:
                record["path"], record["uploaded"] = path, True
            self._ingest(record)
            return _json_reply(201, {"id": record["id"], "state": "pending", "file": self._file_public(record), "upload": None})
        data = _load_json(body)
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        data = {k: v for k, v in data.items() if v is not None}
        self._unknown(data, _FILE_FIELDS, "")
        if not isinstance(data.get("mime_type"), str) or "/" not in data.get("mime_type", ""):
            raise ApiError(422, "mime_type: field required (e.g. image/png).")
        size = data.get("size_bytes")
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 5 * 1024 ** 3:
            raise ApiError(422, "size_bytes: field required, 1 byte to 5 GiB.")
        record = self._new_file(key, data, now_wall)
        token = uuid.uuid4().hex
        with self._lock:
            record["upload_token"] = token
            record["upload_expires"] = self.now() + self.upload_ttl_s
        upload = {"url": f"{self.url}/_uploads/{record['id']}?X-Amz-Signature={token}&X-Amz-Expires={int(self.upload_ttl_s)}",
                  "method": "PUT", "headers": {"Content-Type": record["mime_type"]},
                  "expires_at": _iso(now_wall + self.upload_ttl_s)}
        return _json_reply(201, {"id": record["id"], "state": "pending", "file": self._file_public(record), "upload": upload})

    def _new_file(self, key: str, meta: dict, now_wall: float) -> dict:
        purpose = meta.get("purpose") or "input"
        if purpose not in ("input", "reference"):
            raise ApiError(422, f"purpose: {purpose!r} is not one of input, reference.")
        for name in ("filename", "user_id"):
            if meta.get(name) is not None and not isinstance(meta[name], str):
                raise ApiError(422, f"{name}: must be a string.")
        expires = meta.get("expires_at")
        expires_ts = _parse_iso(expires, "expires_at") if expires else None
        with self._lock:
            self._file_seq += 1
            record = {"id": str(uuid.uuid4()), "key": key, "seq": self._file_seq, "created_at": _iso(now_wall),
                      "mime_type": meta["mime_type"], "purpose": purpose, "size_bytes": int(meta["size_bytes"]),
                      "state": "pending", "deleted_at": None, "expires_at": expires_ts, "failure_reason": None,
                      "filename": meta.get("filename"), "user_id": meta.get("user_id"), "path": None,
                      "uploaded": False, "completed": False, "ready_at": None, "outcome": None, "info": None}
            self._files[record["id"]] = record
        return record

    def _ingest(self, record: dict) -> None:
        """Decide the file's fate now (decode its bytes); it shows after ``file_ingest_s``."""
        try:
            if record["path"].stat().st_size != record["size_bytes"]:
                raise media.BadMedia(f"uploaded {record['path'].stat().st_size} bytes, declared size_bytes {record['size_bytes']}")
            info = media.probe_file(record["path"], record["mime_type"])
            outcome = ("ready", None)
        except media.BadMedia as e:
            info, outcome = None, ("failed", str(e))
        with self._lock:
            record.update(completed=True, info=info, outcome=outcome, ready_at=self.now() + self.file_ingest_s)

    def _refresh_file(self, f: dict) -> None:
        if f["state"] == "deleted":
            return
        if f["expires_at"] is not None and self._wall() >= f["expires_at"]:
            f["state"], f["deleted_at"] = "deleted", f["expires_at"]
        elif f["state"] == "pending" and f["completed"] and self.now() >= f["ready_at"]:
            f["state"], f["failure_reason"] = f["outcome"]

    def _file_public(self, f: dict) -> dict:
        with self._lock:
            self._refresh_file(f)
            return {"id": f["id"], "created_at": f["created_at"], "mime_type": f["mime_type"], "purpose": f["purpose"],
                    "size_bytes": f["size_bytes"], "state": f["state"],
                    "deleted_at": _iso(f["deleted_at"]) if f["deleted_at"] else None,
                    "expires_at": _iso(f["expires_at"]) if f["expires_at"] else None,
                    "failure_reason": f["failure_reason"], "filename": f["filename"], "user_id": f["user_id"]}

    def _own_file(self, key: str, file_id: str, *, where: str = "file_id", status: int = 404) -> dict:
        with self._lock:
            f = self._files.get(file_id)
            if f is None or f["key"] != key:
                raise ApiError(status, f"{where}: file {file_id} not found." if status != 404 else "File not found.")
            self._refresh_file(f)
            return f

    def _complete_file(self, key: str, file_id: str) -> dict:
        f = self._own_file(key, file_id)
        if f["state"] == "deleted":
            raise ApiError(404, "File not found.")
        if not f["uploaded"]:
            raise ApiError(400, f"file {file_id}: no bytes were uploaded yet; PUT them to upload.url first.")
        if not f["completed"]:
            self._ingest(f)
        return self._file_public(f)

    def _delete_file(self, key: str, file_id: str) -> None:
        f = self._own_file(key, file_id)
        with self._lock:
            if f["state"] != "deleted":
                f["state"], f["deleted_at"] = "deleted", self._wall()

    def _list_files(self, key: str, query: dict) -> dict:
        try:
            limit = int(query.get("limit", 25))
        except ValueError:
            raise ApiError(422, "limit: must be an integer 1..100.") from None
        if not 1 <= limit <= 100:
            raise ApiError(422, f"limit: {limit} is outside 1..100.")
        state, purpose = query.get("state"), query.get("purpose")
        if state is not None and state not in ("pending", "ready", "failed", "deleted"):
            raise ApiError(422, f"state: {state!r} is not a file state.")
        if purpose is not None and purpose not in ("input", "reference"):
            raise ApiError(422, f"purpose: {purpose!r} is not one of input, reference.")
        below = None
        if query.get("cursor"):
            try:
                below = int(base64.urlsafe_b64decode(query["cursor"].encode()).decode().removeprefix("seq:"))
            except (ValueError, binascii.Error):
                raise ApiError(422, "cursor: not a cursor this API returned.") from None
        with self._lock:
            mine = sorted((f for f in self._files.values() if f["key"] == key), key=lambda f: -f["seq"])
            for f in mine:
                self._refresh_file(f)
            picked = [f for f in mine
                      if (below is None or f["seq"] < below)
                      and (f["state"] == state if state else f["state"] != "deleted")
                      and (purpose is None or f["purpose"] == purpose)]
        page, more = picked[:limit], len(picked) > limit
        cursor = base64.urlsafe_b64encode(f"seq:{page[-1]['seq']}".encode()).decode() if more else None
        return {"data": [self._file_public(f) for f in page], "has_more": more, "next_cursor": cursor}

    def _receive_upload(self, rel: str, query: dict, headers, body) -> _Reply:
        segs = rel.split("/")
        with self._lock:
            f = self._files.get(segs[2]) if len(segs) == 3 else None
            if f is None or f.get("upload_token") is None:
                raise ApiError(404, "NoSuchUpload")
            if query.get("X-Amz-Signature") != f["upload_token"]:
                raise ApiError(403, "SignatureDoesNotMatch")
            if self.now() >= f["upload_expires"]:
                raise ApiError(403, "Request has expired")
            if f["completed"] or f["state"] == "deleted":
                raise ApiError(403, "The upload for this file is closed.")
        if (headers.get("Content-Type") or "").split(";")[0].strip().lower() != f["mime_type"].lower():
            raise ApiError(403, f"SignatureDoesNotMatch: send the Content-Type header {f['mime_type']!r} from upload.headers.")
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        if size != f["size_bytes"]:
            raise ApiError(403, f"SignatureDoesNotMatch: {size} bytes sent, size_bytes was {f['size_bytes']}.")
        path = self._upload_dir / f["id"]
        if isinstance(body, Path):
            body.replace(path)
        else:
            path.write_bytes(body)
        with self._lock:
            f["path"], f["uploaded"] = path, True
        return _Reply(200, b"", headers={"ETag": f'"{uuid.uuid4().hex}"'})


def _enum(obj: dict, name: str, allowed: tuple, where: str):
    if name not in obj:
        return None
    value = obj[name]
    if value not in allowed or not isinstance(value, str):
        raise ApiError(422, f"{where}{name}: {value!r} is not one of {', '.join(allowed)}.")
    return value


def _bool(obj: dict, name: str, where: str) -> bool:
    value = obj.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(422, f"{where}{name}: must be true or false, not {value!r}.")
    return value


def _ratio(aspect: str) -> float:
    a, b = (int(x) for x in aspect.split(":"))
    return a / b


def _source_position(pos: Any, strict: bool) -> None:
    if not isinstance(pos, dict):
        raise ApiError(422, "video.source_position: must be an object with x_norm, y_norm, w_norm, h_norm.")
    if strict:
        extra = sorted(set(pos) - set(_POSITION))
        if extra:
            raise ApiError(422, f"video.source_position.{extra[0]}: extra inputs are not permitted.")
    for name in _POSITION:
        v = pos.get(name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ApiError(422, f"video.source_position.{name}: field required (a number).")
        if name in ("w_norm", "h_norm") and not 0.0 < v <= 2.0:
            raise ApiError(422, f"video.source_position.{name}: {v} is outside (0, 2].")
        if name in ("x_norm", "y_norm") and not -2.0 <= v <= 2.0:
            raise ApiError(422, f"video.source_position.{name}: {v} is outside -2..2.")


def _load_json(body) -> Any:
    raw = body.read_bytes() if isinstance(body, Path) else body
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.") from None


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict, tuple[bytes, str, str | None] | None]:
    """Form fields and the 'file' part (bytes, content type, filename) of a multipart body."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not msg.is_multipart():
        raise ApiError(400, "The multipart body could not be parsed.")
    form: dict[str, str] = {}
    blob = None
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            blob = (payload, part.get_content_type(), part.get_filename())
        elif name:
            form[name] = payload.decode("utf-8", "replace")
    return form, blob


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LumaEmulator/1"
    timeout = 30

    def log_message(self, *args) -> None:  # quiet: tests read emu.requests instead
        pass

    def _read_body(self, spool: bool) -> bytes | Path:
        length = self.headers.get("Content-Length")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        emu: LumaEmulator = self.server.emulator  # type: ignore[attr-defined]
        if spool:
            out = Path(tempfile.mkstemp(dir=emu._upload_dir, suffix=".put")[1])
            with out.open("wb") as fh:
                for chunk in self._body_chunks(length, chunked):
                    fh.write(chunk)
            return out
        data = bytearray()
        for chunk in self._body_chunks(length, chunked):
            data += chunk
            if len(data) > BODY_MAX_BYTES:
                raise ApiError(413, "The request body is too large.")
        return bytes(data)

    def _body_chunks(self, length, chunked):
        if chunked:
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        remaining = int(length or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    def _serve(self, method: str) -> None:
        emu: LumaEmulator = self.server.emulator  # type: ignore[attr-defined]
        request_id = self.headers.get("X-Request-Id") or str(uuid.uuid4())
        spool = method == "PUT" and self.path.startswith("/_uploads/")
        try:
            body = self._read_body(spool)
            rel, reply = emu._handle(method, self.path, self.headers, body)
        except ApiError as e:
            rel, reply = urlsplit(self.path).path, _json_reply(e.status, {"detail": e.detail}, e.headers)
            self.close_connection = True
        finally:
            if spool and "body" in locals() and isinstance(body, Path):
                body.unlink(missing_ok=True)
        if not rel.startswith("/_emulator/"):
            emu._record(method, rel, reply.status)
        if reply.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        size = reply.file.stat().st_size if reply.file is not None else len(reply.body)
        self.send_response(reply.status)
        self.send_header("X-Request-Id", request_id)
        self.send_header("X-API-Version", API_VERSION)
        for k, v in (reply.headers or {}).items():
            self.send_header(k, v)
        if reply.status != 204:
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if method == "HEAD" or reply.status == 204:
            return
        if reply.file is not None:
            with reply.file.open("rb") as fh:
                shutil.copyfileobj(fh, self.wfile, 1 << 20)
        else:
            self.wfile.write(reply.body)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_HEAD(self):
        self._serve("HEAD")

    def do_DELETE(self):
        self._serve("DELETE")

    def do_PATCH(self):
        self._serve("PATCH")


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
