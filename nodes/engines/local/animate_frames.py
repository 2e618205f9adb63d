"""What WanAnimateToVideo takes for one window, made from a Modify shot's source and tracks.

- pose video: the tracks' skeletons on black (motion.skeleton.render_pose, OpenPose colours);
- face video: 512x512 crops along the performer's face track (a square 1.5x the face box, the
  nearest tracked box held over frames where the face is not seen);
- background video (replace mode): the source frames; character mask: 1 over the performer (their
  box per frame, grown by a tenth), 0 where the background is kept.

The performer is the person tracked on the most frames. :func:`animate_inputs` makes all of them
for one window of a shot. Pure numpy/OpenCV, no ComfyUI import.
"""

from __future__ import annotations

import bisect
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ...common.errors import EngineUnsupported

FACE_SIZE = 512


def performer(tracks: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pose track of the person seen on the most frames (None when there is none)."""
    poses = tracks.get("poses", [])
    return max(poses, key=lambda t: (len(t.get("frames", [])), -t["id"])) if poses else None


def face_track(tracks: Mapping[str, Any], person: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The performer's face track: the one with their id, else the face seen on the most frames."""
    faces = tracks.get("faces", [])
    if not faces:
        return None
    if person is not None:
        same = [f for f in faces if f["id"] == person["id"]]
        if same:
            return same[0]
    return max(faces, key=lambda t: len(t.get("frames", [])))


def _nearest(track: Mapping[str, Any], frame: int, key: Callable[[Mapping], Any]):
    entries = track.get("frames", [])
    if not entries:
        return None
    numbers = [e["frame"] for e in entries]
    i = bisect.bisect_left(numbers, frame)
    best = min((j for j in (i - 1, i) if 0 <= j < len(entries)), key=lambda j: abs(numbers[j] - frame))
    return key(entries[best])


def person_box(entry: Mapping[str, Any]):
    if entry.get("box"):
        return entry["box"]
    k = np.asarray(entry["keypoints"], np.float64)
    seen = k[k[:, 2] >= 0.3]
    if len(seen) < 2:
        return None
    return [seen[:, 0].min(), seen[:, 1].min(), seen[:, 0].max(), seen[:, 1].max()]


def face_crop(rgb: np.ndarray, box, size: int = FACE_SIZE) -> np.ndarray:
    """A square crop 1.5x the face box around its centre (edge pixels repeated past the frame), size x size."""
    import cv2

    x0, y0, x1, y1 = box
    side = 1.5 * max(x1 - x0, y1 - y0, 2.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    k = size / side
    m = np.array([[k, 0, size / 2 - cx * k], [0, k, size / 2 - cy * k]], np.float32)
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def face_video(source_frames: Sequence[np.ndarray], frames: Sequence[int], track) -> np.ndarray:
    """(n, 512, 512, 3) uint8 face crops of ``frames`` (source frame numbers) along ``track``."""
    out = np.zeros((len(frames), FACE_SIZE, FACE_SIZE, 3), np.uint8)
    for i, (rgb, f) in enumerate(zip(source_frames, frames)):
        box = _nearest(track, f, lambda e: e["box"])
        if box is not None:
            out[i] = face_crop(rgb, box)
    return out


def character_mask(tracks: Mapping[str, Any], person, frames: Sequence[int], size: tuple[int, int]) -> np.ndarray:
    """(n, height, width) float32: 1 over the performer on each frame (their box grown by a tenth)."""
    width, height = size
    sx, sy = width / float(tracks["width"]), height / float(tracks["height"])
    out = np.zeros((len(frames), height, width), np.float32)
    if person is None:
        return out
    for i, f in enumerate(frames):
        box = _nearest(person, f, person_box)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        dx, dy = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
        a0, a1 = int(max(0, (x0 - dx) * sx)), int(min(width, np.ceil((x1 + dx) * sx)))
        b0, b1 = int(max(0, (y0 - dy) * sy)), int(min(height, np.ceil((y1 + dy) * sy)))
        out[i, b0:b1, a0:a1] = 1.0
    return out


def animate_inputs(shot, size: tuple[int, int], start: int, length: int, mode: str = "replace") -> dict:
    """pose_video, face_video (512x512), background_video (uint8), character_mask (float) and the
    character image for frames ``start .. start+length-1`` of a modify shot (last frame held past its end)."""
    from ...motion.skeleton import render_pose
    from .frames import source_window

    modify = shot.options.get("modify")
    motion = getattr(modify, "motion", None)
    if motion is None or getattr(modify, "character", None) is None:
        raise EngineUnsupported("Local engine: a character swap needs the character image and a Motion Source.",
                                field="character")
    width, height = size
    last = shot.source.frame_count - 1
    frames = [min(i, last) for i in range(start, start + length)]
    have = min(length, max(0, last - start + 1))
    src = list(source_window(shot, start, have)) if have else []
    src_u8 = [_u8(f) for f in src]
    src_u8 += [src_u8[-1]] * (length - len(src_u8)) if src_u8 else []
    tracks = motion.tracks
    person = performer(tracks)
    pose = np.stack([render_pose(tracks, f, width, height) for f in frames])
    face = face_track(tracks, person)
    faces = face_video(src_u8, frames, face) if face is not None else None
    background = np.stack([_fit(f, size) for f in src_u8]) if mode == "replace" else None
    mask = character_mask(tracks, person, frames, size) if mode == "replace" else None
    return {"pose_video": pose, "face_video": faces, "background_video": background, "character_mask": mask,
            "reference_image": _u8(np.asarray(modify.character))[None], "performer": person and person["id"],
            "face": face and face["id"]}


def _u8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame[..., :3]
    return (np.clip(frame[..., :3], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frame.shape[1] == size[0] and frame.shape[0] == size[1]:
        return frame
    from ..draft.animatic import cover_fit

    return cover_fit(frame.astype(np.float32) / 255.0, size)
