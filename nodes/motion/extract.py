"""One pass over a clip: face, pose and camera tracks, the preview videos and ``tracks.json``.

The clip is streamed in chunks (``footage.stream.iter_chunks``); each frame is tracked, then drawn
into up to three videos written at the same time by background encoders (``footage.encode``):
``overlay.mp4`` (skeletons, face boxes, landmarks and ids on the source, with its audio),
``pose.mp4`` (skeletons on black, OpenPose colours) and ``edges.mp4``. Memory holds a couple of
chunks, the models, and the tracks themselves, which grow with the clip: about 20 KB of Python
objects (2.5 KB of JSON) per face per frame and 2 KB per person per frame, so 8 faces over 20 s
at 24 fps add about 80 MB. Everything is written inside ``out_dir`` atomically, never over a
file. No ComfyUI import.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import Cancelled, DirectorError
from ..common.paths import atomic_path
from ..common.progress import CancelFn, ProgressFn, check_cancel
from ..footage.encode import encode_mp4
from ..footage.stream import FootageRef, audio_window, iter_chunks, ref_info, source_info
from . import structure as structure_mod
from .skeleton import draw_person, render_overlay
from .tracks import COCO17, MAX_TRACKS, TRACKS_VERSION, MotionSource, fps_text, validate_tracks

CHUNK = 16
KEYPOINTS = ("auto", "dwpose", "mediapipe")


def keypoint_files(options: "MotionOptions"):
    """The DWPose files the run uses, or None for mediapipe (``options.keypoints`` decides)."""
    if not options.poses or options.keypoints == "mediapipe":
        return None
    from .dwpose import find_files, require_files

    return require_files() if options.keypoints == "dwpose" else find_files()


@dataclass(frozen=True)
class MotionOptions:
    faces: bool = True
    poses: bool = True
    camera: bool = True
    structure: str = "off"
    max_people: int = MAX_TRACKS
    keypoints: str = "auto"
    """Who finds body keypoints: "auto" (DWPose when its files are in the models folder, else
    mediapipe), "dwpose" (an error naming the files and folders when missing), "mediapipe"."""

    def check(self) -> "MotionOptions":
        """Refuse bad options before any work (clear errors naming the input and the limit)."""
        if isinstance(self.max_people, bool) or not isinstance(self.max_people, int) or \
                not 1 <= self.max_people <= MAX_TRACKS:
            raise DirectorError(f"max_people: {self.max_people!r} must be a whole number from 1 to {MAX_TRACKS}.",
                                field="max_people")
        structure_mod.check_kind(self.structure)
        if self.keypoints not in KEYPOINTS:
            raise DirectorError(f"keypoints: '{self.keypoints}' is not one of {', '.join(KEYPOINTS)}.",
                                field="keypoints")
        if self.poses and self.keypoints == "dwpose":
            from .dwpose import require_files

            require_files()
        if not (self.faces or self.poses or self.camera or self.structure != "off"):
            raise DirectorError("faces/poses/camera/structure: everything is off; turn on at least one.",
                                field="faces")
        if self.faces or self.poses:
            from . import backend

            backend.load()
        return self


def frame_ranges(frames: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9"."""
    out, start, prev = [], None, None
    for f in frames:
        if start is None:
            start = prev = f
        elif f == prev + 1:
            prev = f
        else:
            out.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = f
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(out)


def as_uint8(chunk: np.ndarray) -> np.ndarray:
    """Chunk of any footage precision -> uint8 display-referred RGB (what the trackers see)."""
    if chunk.dtype == np.uint8:
        return chunk
    if chunk.dtype == np.uint16:
        return (chunk >> 8).astype(np.uint8)
    # scene-linear EXR frames: a plain 2.2 gamma is enough for finding faces and edges
    return (np.clip(chunk, 0.0, 1.0) ** (1 / 2.2) * 255.0 + 0.5).astype(np.uint8)


class _VideoSink:
    """An encoder in a background thread fed chunk by chunk (at most two chunks queued)."""

    _ABORT = object()

    def __init__(self, path: Path, fps: Fraction, **kw):
        self.path = path
        self._q: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.result = None
        self._thread = threading.Thread(target=self._run, args=(fps, kw), daemon=True,
                                        name=f"director-motion-{path.stem}")
        self._thread.start()

    def _chunks(self):
        while True:
            item = self._q.get()
            if item is None:
                return
            if item is self._ABORT:
                raise Cancelled("motion source cancelled")
            yield item

    def _run(self, fps, kw):
        try:
            self.result = encode_mp4(self._chunks(), self.path, fps, **kw)
        except BaseException as e:  # noqa: BLE001 - reported to the caller's thread
            self.error = e

    def put(self, chunk: np.ndarray) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self._q.put(chunk, timeout=0.2)
                return
            except queue.Full:
                continue

    def close(self):
        self.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.result

    def abort(self) -> None:
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass
        try:
            self._q.put_nowait(self._ABORT)
        except queue.Full:
            pass
        self._thread.join(timeout=30)


def _r(v: float) -> float:
    return round(float(v), 2)


def extract_motion(ref: FootageRef, out_dir: Path, options: MotionOptions = MotionOptions(), *,
                   progress: ProgressFn | None = None, cancel: CancelFn | None = None,
                   detect_every: int = 2) -> MotionSource:
    """Track ``ref`` and write ``tracks.json`` and the preview videos into ``out_dir`` (an empty,
    claimed version folder). Returns the :class:`MotionSource` a ``DIRECTOR_MOTION`` socket carries."""
    options.check()
    info = ref_info(ref)
    width, height, total = info.width, info.height, info.frame_count
    if total < 1:
        raise DirectorError("video: the clip has no frames.", field="video")
    out_dir = Path(out_dir)

    face_tracker = pose_tracker = camera = None
    indices: tuple[int, ...] = ()
    if options.faces or options.poses:
        from .faces import FaceTracker, landmark_indices

        indices = landmark_indices()
        # the face mesh runs even when only poses are wanted: it confirms new faces (no body is sought
        # below a false detection) and its tight boxes keep each pose on its own head
        face_tracker = FaceTracker(width, height, max_faces=options.max_people, landmarks=True,
                                   detect_every=detect_every)
    body_finder = None
    dw_files = keypoint_files(options)
    keypoint_model = None
    if options.poses and dw_files is not None:
        from .dwpose import WholeBodyTracker

        pose_tracker = WholeBodyTracker(width, height, dw_files, reserve_id=face_tracker.reserve_id,
                                        max_people=options.max_people)
        keypoint_model = "dwpose"
    elif options.poses:
        from .people import BodyFinder
        from .poses import PoseTracker

        pose_tracker = PoseTracker(width, height, reserve_id=face_tracker.reserve_id)
        body_finder = BodyFinder(width, height)  # people the face detector misses (turned away, small)
        keypoint_model = "mediapipe pose"
    from .poses import body_box, keypoint_box

    finder = None
    if face_tracker is not None:
        from .people import Lookahead

        finder = Lookahead(face_tracker, body_finder)  # faces and bodies found a frame ahead, on a worker

    if options.camera:
        from .camera import CameraTracker

        camera = CameraTracker(width, height)

    src = source_info(ref)
    has_audio = src.has_audio and bool(ref.path) and Path(ref.path).is_file()
    sinks: dict[str, _VideoSink] = {}
    sink_kw = dict(progress=None, cancel=None, total_frames=total)
    if options.faces or options.poses:
        sinks["overlay"] = _VideoSink(out_dir / "overlay.mp4", info.fps, audio_from=ref.path if has_audio else None,
                                      audio_window=audio_window(ref) if has_audio else None, **sink_kw)
    if options.poses:
        sinks["pose"] = _VideoSink(out_dir / "pose.mp4", info.fps, **sink_kw)
    if options.structure == "edges":
        sinks["structure"] = _VideoSink(out_dir / "edges.mp4", info.fps, **sink_kw)

    face_frames: dict[int, list[dict]] = {}
    pose_frames: dict[int, list[dict]] = {}
    pose_found: dict[int, str] = {}
    camera_frames: list[dict] = []
    crowded: list[int] = []
    frame = 0
    try:
        for chunk in iter_chunks(ref, CHUNK):
            check_cancel(cancel)
            rgb_chunk = as_uint8(chunk)
            n = len(rgb_chunk)
            outs = {k: np.empty_like(rgb_chunk) for k in sinks}
            if finder is not None:
                finder.feed(rgb_chunk, frame)
            for i in range(n):
                rgb = rgb_chunk[i]
                faces, poses, seen, bodies = [], [], 0, []
                if finder is not None:
                    faces, seen, bodies = finder.next()
                    if seen > options.max_people:
                        crowded.append(frame)
                if pose_tracker is not None:
                    seeds = [(f.id, f.box) for f in faces]
                    poses = pose_tracker.process(rgb, frame, seeds, bodies) if body_finder else \
                        pose_tracker.process(rgb, frame, seeds)
                face_entries = []
                if options.faces:
                    for f in faces:
                        e = {"frame": frame, "box": [_r(v) for v in f.box],
                             "landmarks": [[_r(x), _r(y)] for x, y in f.landmarks], "score": round(f.score, 4)}
                        face_frames.setdefault(f.id, []).append(e)
                        face_entries.append((f.id, e))
                pose_entries = []
                for p in poses:
                    e = {"frame": frame, "keypoints": [[_r(x), _r(y), round(float(c), 4)] for x, y, c in p.keypoints]}
                    if p.box is not None:
                        e["box"] = [_r(v) for v in p.box]
                    for group, pts in (p.extra or {}).items():
                        rows = [[[_r(x), _r(y), round(float(c), 4)] for x, y, c in h] for h in pts] \
                            if group == "hands" else [[_r(x), _r(y), round(float(c), 4)] for x, y, c in pts]
                        e[group] = rows
                    pose_frames.setdefault(p.id, []).append(e)
                    pose_found.setdefault(p.id, p.found)
                    pose_entries.append((p.id, e))
                if camera is not None:
                    boxes = [_grow(f.box, 0.3) for f in faces] + [body_box(f.box, width, height) for f in faces]
                    for p in poses:
                        kb = keypoint_box(p.keypoints, 0.3)
                        if kb is not None:
                            boxes.append(_grow(kb, 0.15))
                        elif p.box is not None:
                            boxes.append(_grow(p.box, 0.1))
                    h = camera.process(rgb, boxes)
                    camera_frames.append({"frame": frame, "homography": [[float(v) for v in row] for row in h]})
                if "overlay" in outs:
                    outs["overlay"][i] = render_overlay(rgb, face_entries, pose_entries)
                if "pose" in outs:
                    canvas = outs["pose"][i]
                    canvas[:] = 0
                    for _pid, e in pose_entries:
                        draw_person(canvas, e)
                if "structure" in outs:
                    outs["structure"][i] = structure_mod.edges(rgb)
                frame += 1
            for k, sink in sinks.items():
                sink.put(outs[k])
            if progress is not None:
                progress(frame, total)
        results = {k: s.close() for k, s in sinks.items()}
    except BaseException:
        for s in sinks.values():
            s.abort()
        raise
    finally:
        if finder is not None:
            finder.close()
        if face_tracker is not None:
            face_tracker.close()
        if pose_tracker is not None:
            pose_tracker.close()
        if body_finder is not None:
            body_finder.close()

    warnings: list[str] = []
    if crowded:
        warnings.append(f"More than {options.max_people} faces in frame{'s' if len(crowded) > 1 else ''} "
                        f"{frame_ranges(crowded)}: the {options.max_people} most prominent (largest, surest) are "
                        f"tracked, the rest are left out.")
    if options.poses and not pose_frames:
        warnings.append("poses: no person was found in any frame (people are found by their faces and by a "
                        "person mask of their bodies).")
    keyless = [pid for pid, fr in pose_frames.items() if not any(c > 0 for e in fr for _x, _y, c in e["keypoints"])]
    if keyless:
        warnings.append(f"poses: person{'s' if len(keyless) > 1 else ''} {', '.join(map(str, sorted(keyless)))} "
                        "found by the body only, never facing the camera: a box on every frame but no keypoints "
                        "(mediapipe's pose model starts from a face; the DWPose models find keypoints from behind).")
    if options.faces and not face_frames:
        warnings.append("faces: no face was found in any frame.")
    if camera is not None and camera.weak_frames:
        warnings.append(f"camera: too little background to measure on frame(s) {frame_ranges(camera.weak_frames)}; "
                        "the previous frame's motion was carried on there.")

    doc: dict[str, Any] = {
        "version": TRACKS_VERSION, "width": width, "height": height, "fps": fps_text(info.fps),
        "frame_count": frame,
        "faces": [{"id": tid, "frames": fr} for tid, fr in sorted(face_frames.items())],
        "poses": [{"id": tid, "keypoint_names": list(COCO17), "found": pose_found[tid],
                   "keypoint_model": keypoint_model, "frames": fr} for tid, fr in sorted(pose_frames.items())],
        "camera": camera_frames,
    }
    if dw_files is not None:
        doc["keypoint_files"] = {"detector": dw_files.detector.name, "pose": dw_files.pose.name,
                                 "folder": str(dw_files.pose.parent)}
    if options.faces:
        doc["face_landmarks"] = {"model": "mediapipe face mesh (468 points)", "mesh_indices": list(indices)}
    doc["warnings"] = warnings
    validate_tracks(doc)
    tracks_path = out_dir / "tracks.json"
    with atomic_path(tracks_path) as tmp:
        tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    video = {k: (r.path if r is not None else None) for k, r in results.items()}
    source = MotionSource(tracks=doc, source=ref, tracks_path=tracks_path, pose_video=video.get("pose"),
                          overlay_video=video.get("overlay"), structure_video=video.get("structure"),
                          structure_kind=options.structure if options.structure != "off" else None,
                          warnings=tuple(warnings))
    return source


def _grow(box, by: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * by, (y1 - y0) * by
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def describe(source: MotionSource, elapsed: float | None = None) -> str:
    """The node's info text: what was found, where it was written, and the warnings."""
    t = source.tracks
    kf = t.get("keypoint_files")
    model = f"; keypoints: DWPose ({kf['detector']} + {kf['pose']} in {kf['folder']})" if kf else \
        ("; keypoints: mediapipe pose" if t.get("poses") else "")
    lines = [f"{t['width']}x{t['height']}, {t['frame_count']} frames at {t['fps']} fps{model}"
             + (f", tracked in {elapsed:.1f} s ({t['frame_count'] / max(elapsed, 1e-6):.1f} fps)" if elapsed else "")]
    for kind in ("faces", "poses"):
        tracks = t.get(kind, [])
        if tracks:
            spans = ", ".join(f"id {tr['id']}: frames {tr['frames'][0]['frame']}-{tr['frames'][-1]['frame']} "
                              f"({len(tr['frames'])} seen{', found by ' + tr['found'] if tr.get('found') else ''})"
                              for tr in tracks)
            lines.append(f"{kind}: {len(tracks)} track{'s' if len(tracks) != 1 else ''} ({spans})")
    cam = t.get("camera", [])
    if cam:
        h = np.array(cam[-1]["homography"])
        c = np.array([t["width"] / 2, t["height"] / 2, 1.0])
        m = h @ c
        m = m[:2] / m[2]
        lines.append(f"camera: the last frame's centre lies at ({m[0]:.1f}, {m[1]:.1f}) in frame 0 "
                     f"(moved {m[0] - c[0]:+.1f}, {m[1] - c[1]:+.1f} px)")
    if source.structure_kind:
        lines.append(f"structure: {source.structure_kind}")
    if source.tracks_path:
        lines.append(f"tracks: {source.tracks_path}")
    lines += [f"warning: {w}" for w in source.warnings]
    return "\n".join(lines)
