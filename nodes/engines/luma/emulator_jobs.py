"""The Luma emulator's job state machine: injected faults, rate and concurrency limits, jobs that
go queued -> processing -> completed | failed on the emulator's clock, refunds of failed jobs,
presigned-style output links and the media behind them."""

from __future__ import annotations

import base64
import fnmatch
import math
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from . import emulator_media as media
from .emulator_files import _iso
from .emulator_http import ApiError, _json_reply, _load_json, _Reply
from .emulator_validate import FAILURE_REASONS

@dataclass
class Fault:
    """One injected fault; applies to the next ``times`` requests matching ``route``.

    ``route`` is "METHOD /path" relative to ``/v1`` with ``*`` wildcards ("GET /generations/*"),
    or "job" for the next created jobs. Set one behaviour:
    ``status`` (an error response, with ``Retry-After`` when ``retry_after`` is set),
    ``delay_s`` (answer normally but late; with ``status``, late then the error),
    ``drop`` (close the connection without handling the request),
    ``drop_after_create`` (the job is created and billed, then the connection is closed without
    a response), ``after_create`` with ``status`` (the job is created and billed, then the error is
    answered: a gateway's 502 after the backend made the job), ``hold`` (the request is read, then
    held until :meth:`LumaEmulator.release`; :meth:`LumaEmulator.wait_held` waits for it), or,
    with route "job", ``failure_code`` (the job ends failed with that code).
    Download faults (route "GET /_media/*"): ``redirect_to`` (302 to that URL), ``endless`` (a body
    that never ends), ``garbage`` (the real file's first bytes, then junk: sniffs right, does not
    decode), ``stall_s`` (half the file, then silence for that long).
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
    after_create: bool = False
    hold: bool = False
    redirect_to: str | None = None
    endless: bool = False
    garbage: bool = False
    stall_s: float = 0.0

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
        if self.after_create and (self.route != "POST /generations" or not self.status or self.drop_after_create):
            raise ValueError("after_create needs status and route 'POST /generations'")
        media = (self.redirect_to, self.endless, self.garbage, self.stall_s)
        if any(media) and not self.route.startswith("GET /_media"):
            raise ValueError("redirect_to, endless, garbage and stall_s apply to route 'GET /_media/*'")
        if not (self.status or self.delay_s or self.drop or self.drop_after_create or self.failure_code or self.hold
                or any(media)):
            raise ValueError("a Fault needs status, delay_s, drop, drop_after_create, hold, failure_code or a "
                             "download fault")

    @property
    def creates_first(self) -> bool:
        """The job is made before this fault answers."""
        return self.drop_after_create or self.after_create

    def matches(self, route: str) -> bool:
        return fnmatch.fnmatchcase(route, self.route)


class Seen(NamedTuple):
    """One request as the emulator saw it (status 0: the connection was dropped)."""

    method: str
    path: str
    status: int


class Jobs:
    """Generations: limits, creation, the clock-driven states, signed outputs (a mixin of LumaEmulator)."""

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
            self._changed.notify_all()
        if job.get("reframe", {}).get("source") is not None and job["fate"] == "completed":
            # rendered while the job is queued/processing, as the service would; a download waits for it
            threading.Thread(target=self._reframed, args=(job,), daemon=True, name="emulator-reframe").start()
        reply = _json_reply(201, self._public(job, sign=False, as_created=True), rate_headers)
        after = self._take_fault(route, kind="after_create")
        if after is not None and after.drop_after_create:
            return _Reply(0, drop=True)
        if after is not None:
            return _json_reply(int(after.status), {"detail": after.detail or f"injected fault: HTTP {after.status} "
                                                   "(after the job was created)"})
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

    def _media_fault(self, fault, rel: str) -> _Reply:
        """A download fault's reply (see Fault)."""
        if fault.redirect_to:
            return _Reply(302, b"", headers={"Location": fault.redirect_to})
        if fault.endless:
            return _Reply(200, content_type="video/mp4", endless=True)
        reply = self._serve_media(rel)
        if reply.status != 200:
            return reply
        data = reply.file.read_bytes()
        if fault.garbage:
            import random

            junk = random.Random(len(data)).randbytes(max(0, len(data) - 64))
            return _Reply(200, data[:64] + junk, content_type=reply.content_type)
        return _Reply(200, data, content_type=reply.content_type, stall_s=fault.stall_s)
