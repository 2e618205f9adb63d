"""The tracks contract (``tracks.json``, version 2; version 1 still loads) and the object a
``DIRECTOR_MOTION`` socket carries.

Schema (public: other tools read it). Pixel coordinates of the source frame, frames
numbered from 0 in the source's frame grid::

    {"version": 1, "width": W, "height": H, "fps": "24000/1001", "frame_count": N,
     "faces": [{"id": 0, "frames": [{"frame": f, "box": [x0, y0, x1, y1],
                                      "landmarks": [[x, y], ...], "score": s}]}],
     "poses": [{"id": 0, "keypoint_names": [...17 COCO names...],
                "frames": [{"frame": f, "keypoints": [[x, y, confidence], ...17]}]}],
     "camera": [{"frame": f, "homography": [[...3], [...3], [...3]]}]}

``camera[f].homography`` maps pixel coordinates of frame f to frame 0. A track lists only the
frames on which it was seen.

Version 2 adds, all optional (a version-1 reader ignores them; version-1 files load unchanged):
a pose track's ``"found"`` ("face": found through its face, "body": through its body, no face
needed) and ``"keypoint_model"`` (e.g. "mediapipe pose", "dwpose"); a pose frame's ``"box"``
[x0, y0, x1, y1] (the person; keypoints all at confidence 0 when only the box is known),
``"feet"`` (6 [x, y, confidence]: left big toe, left small toe, left heel, right ...),
``"hands"`` ([left 21, right 21] [x, y, confidence], the OpenPose hand layout) and
``"face_points"`` (68 [x, y, confidence], the iBUG layout), as whole-body models give them.
No ComfyUI import here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

from ..common.errors import DirectorError

TRACKS_VERSION = 2
READS = (1, 2)
MAX_TRACKS = 8
FOUND = ("face", "body")
EXTRA_POINTS = {"feet": (6,), "hands": (2, 21), "face_points": (68,)}
"""Version-2 whole-body keypoint groups of a pose frame and their shapes (rows of [x, y, confidence])."""
COCO17 = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)


def fps_text(fps: Fraction) -> str:
    """A frame rate as the schema writes it: "24000/1001", "24/1"."""
    f = Fraction(fps)
    return f"{f.numerator}/{f.denominator}"


def _bad(what: str) -> DirectorError:
    return DirectorError(f"tracks: {what}", field="tracks")


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _bad(f"{what} must be a finite number, got {v!r}.")
    return float(v)


def _points(rows, where: str, what: str) -> None:
    for p in rows:
        if not isinstance(p, list) or len(p) != 3:
            raise _bad(f"{where}: each {what} point is [x, y, confidence].")
        for v in p:
            _number(v, f"{where} {what}")


def validate_tracks(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Check a tracks document against schema version 1 or 2; returns it unchanged. Errors name the
    track, frame and field at fault."""
    if not isinstance(data, Mapping):
        raise _bad("the document must be a JSON object.")
    version = data.get("version")
    if isinstance(version, bool) or version not in READS:
        raise _bad(f"version {version!r} is not supported (this pack reads versions "
                   f"{', '.join(str(v) for v in READS)}).")
    for key in ("width", "height", "frame_count"):
        v = data.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if key == "frame_count" else 1):
            raise _bad(f"'{key}' must be a whole number, got {v!r}.")
    try:
        fps = Fraction(str(data.get("fps")))
    except (ValueError, ZeroDivisionError):
        raise _bad(f"'fps' must be a rational like \"24000/1001\", got {data.get('fps')!r}.") from None
    if fps <= 0:
        raise _bad(f"'fps' must be positive, got {data.get('fps')!r}.")
    n = data["frame_count"]

    def frame_of(entry, where: str) -> int:
        f = entry.get("frame") if isinstance(entry, Mapping) else None
        if isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < max(n, 1):
            raise _bad(f"{where}: frame {f!r} is outside 0..{n - 1}.")
        return f

    for kind, limit in (("faces", MAX_TRACKS), ("poses", MAX_TRACKS)):
        tracks = data.get(kind, [])
        if not isinstance(tracks, list):
            raise _bad(f"'{kind}' must be a list.")
        ids = set()
        for t in tracks:
            tid = t.get("id") if isinstance(t, Mapping) else None
            if isinstance(tid, bool) or not isinstance(tid, int) or tid in ids:
                raise _bad(f"{kind}: every track needs a unique whole-number id (got {tid!r}).")
            ids.add(tid)
            if kind == "poses" and tuple(t.get("keypoint_names", ())) != COCO17:
                raise _bad(f"poses {tid}: keypoint_names must be the 17 COCO names in COCO order.")
            if kind == "poses" and "found" in t and t["found"] not in FOUND:
                raise _bad(f"poses {tid}: 'found' must be one of {', '.join(FOUND)}, got {t['found']!r}.")
            last = -1
            for e in t.get("frames", []):
                f = frame_of(e, f"{kind} {tid}")
                if f <= last:
                    raise _bad(f"{kind} {tid}: frames must increase (frame {f} after {last}).")
                last = f
                if kind == "faces":
                    box = e.get("box")
                    if not isinstance(box, list) or len(box) != 4:
                        raise _bad(f"faces {tid} frame {f}: 'box' must be [x0, y0, x1, y1].")
                    for v in box:
                        _number(v, f"faces {tid} frame {f} box")
                    for p in e.get("landmarks", []):
                        if not isinstance(p, list) or len(p) != 2:
                            raise _bad(f"faces {tid} frame {f}: each landmark is [x, y].")
                        for v in p:
                            _number(v, f"faces {tid} frame {f} landmark")
                    _number(e.get("score"), f"faces {tid} frame {f} score")
                else:
                    kps = e.get("keypoints")
                    if not isinstance(kps, list) or len(kps) != len(COCO17):
                        raise _bad(f"poses {tid} frame {f}: 'keypoints' must hold 17 [x, y, confidence].")
                    _points(kps, f"poses {tid} frame {f}", "keypoint")
                    if "box" in e:
                        box = e["box"]
                        if not isinstance(box, list) or len(box) != 4:
                            raise _bad(f"poses {tid} frame {f}: 'box' must be [x0, y0, x1, y1].")
                        for v in box:
                            _number(v, f"poses {tid} frame {f} box")
                    for group, shape in EXTRA_POINTS.items():
                        if group not in e:
                            continue
                        rows = e[group]
                        if len(shape) == 2:
                            if not isinstance(rows, list) or len(rows) != shape[0] or \
                                    any(not isinstance(r, list) or len(r) != shape[1] for r in rows):
                                raise _bad(f"poses {tid} frame {f}: '{group}' must hold {shape[0]} lists of "
                                           f"{shape[1]} [x, y, confidence].")
                            rows = [p for r in rows for p in r]
                        elif not isinstance(rows, list) or len(rows) != shape[0]:
                            raise _bad(f"poses {tid} frame {f}: '{group}' must hold {shape[0]} [x, y, confidence].")
                        _points(rows, f"poses {tid} frame {f}", group)
        # The limit is on people or faces at once, checked by the extractor; ids may exceed it.
        del limit
    last = -1
    for e in data.get("camera", []):
        f = frame_of(e, "camera")
        if f <= last:
            raise _bad(f"camera: frames must increase (frame {f} after {last}).")
        last = f
        h = e.get("homography")
        if not isinstance(h, list) or len(h) != 3 or any(not isinstance(r, list) or len(r) != 3 for r in h):
            raise _bad(f"camera frame {f}: 'homography' must be a 3x3 list of rows.")
        for r in h:
            for v in r:
                _number(v, f"camera frame {f} homography")
    return data


def load_tracks(path: str | Path) -> Mapping[str, Any]:
    """Read and validate a ``tracks.json`` file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DirectorError(f"tracks: '{p.name}' cannot be read as JSON ({e}).", field="tracks") from None
    return validate_tracks(data)


@dataclass(frozen=True)
class MotionSource:
    """What a ``DIRECTOR_MOTION`` socket carries: the tracks of one clip and the files made from it.

    ``tracks`` is a schema-v1 or v2 document (above). ``source`` is the clip's footage reference
    (``footage.stream.FootageRef``). The optional videos are file paths (MP4, the source's frame
    count and rate): ``pose_video`` skeletons on black (control-net style), ``overlay_video``
    skeleton and face overlay on the source, ``structure_video`` edges or depth
    (``structure_kind``). ``warnings`` lists what the user should know (e.g. more than 8 people).
    """

    tracks: Mapping[str, Any]
    source: Any
    tracks_path: Path | None = None
    pose_video: Path | None = None
    overlay_video: Path | None = None
    structure_video: Path | None = None
    structure_kind: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def width(self) -> int:
        return int(self.tracks["width"])

    @property
    def height(self) -> int:
        return int(self.tracks["height"])

    @property
    def frame_count(self) -> int:
        return int(self.tracks["frame_count"])

    @property
    def fps(self) -> Fraction:
        return Fraction(str(self.tracks["fps"]))

    @property
    def people(self) -> int:
        return len(self.tracks.get("poses", []))

    @property
    def faces(self) -> int:
        return len(self.tracks.get("faces", []))
