"""Synthetic tracks for Modify Video tests: a walking stick figure, a face, a known camera pan."""

from __future__ import annotations

from fractions import Fraction

from comfyui_director.nodes.motion.tracks import COCO17, MotionSource, fps_text, validate_tracks

BODY = ((0, -40), (-4, -44), (4, -44), (-8, -42), (8, -42), (-15, -25), (15, -25), (-22, -5), (22, -5),
        (-25, 15), (25, 15), (-10, 10), (10, 10), (-10, 35), (10, 35), (-10, 60), (10, 60))


def keypoints(cx: float, cy: float, conf: float = 0.9) -> list[list[float]]:
    return [[cx + x, cy + y, conf] for x, y in BODY]


def person_track(tid: int, frames, x0: float, y: float, step: float = 3.0) -> dict:
    return {"id": tid, "keypoint_names": list(COCO17),
            "frames": [{"frame": f, "keypoints": keypoints(x0 + f * step, y)} for f in frames]}


def face_track(tid: int, frames, x0: float, y: float = 40.0, step: float = 3.0) -> dict:
    return {"id": tid, "frames": [{"frame": f, "box": [x0 - 8 + f * step, y, x0 + 8 + f * step, y + 18],
                                   "landmarks": [[x0 - 4 + f * step, y + 6], [x0 + 4 + f * step, y + 6]],
                                   "score": 0.9} for f in frames]}


def pan(frames: int, dx: float = 1.0, dy: float = 0.0) -> list[dict]:
    """Camera panning: frame f's pixel x is frame 0's pixel x + f*dx (content appears to move left)."""
    return [{"frame": f, "homography": [[1.0, 0.0, f * dx], [0.0, 1.0, f * dy], [0.0, 0.0, 1.0]]}
            for f in range(frames)]


def tracks(width=320, height=180, frames=24, fps=24, *, people=1, faces=1, camera=True) -> dict:
    doc = {"version": 1, "width": width, "height": height, "fps": fps_text(Fraction(fps)), "frame_count": frames,
           "poses": [person_track(i, range(frames), 60 + 40 * i, 90) for i in range(people)],
           "faces": [face_track(i, range(frames), 60 + 40 * i) for i in range(faces)],
           "camera": pan(frames) if camera else []}
    return validate_tracks(doc)


def motion_for(footage, doc: dict, warnings=(), structure_video=None, structure_kind=None) -> MotionSource:
    return MotionSource(tracks=doc, source=footage, structure_video=structure_video, structure_kind=structure_kind,
                        warnings=tuple(warnings))
