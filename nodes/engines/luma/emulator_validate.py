"""The Luma emulator's request validation: every documented rule a create request is checked
against before any job exists (400/413/422 with ``{"detail": "<field>: <reason>"}``), and the job
plan (size, frames, credits) it yields."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any
from urllib.parse import urlsplit

from ...shot.request import CREDITS_GENERATE, CREDITS_MODIFY, CREDITS_REFRAME_PER_SECOND, FPS, PROMPT_MAX, RESOLUTIONS, output_size
from . import emulator_media as media
from .emulator_http import ApiError

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



def _nearest_aspect(width: int, height: int) -> str:
    ratio = width / height
    return min(RAY_ASPECTS, key=lambda a: abs(math.log(ratio * int(a.split(":")[1]) / int(a.split(":")[0]))))


class Validation:
    """Create-request validation (a mixin of LumaEmulator: reads its settings, keys, files and jobs)."""

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
