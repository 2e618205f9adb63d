"""The Draft engine's Modify Video: a free CPU preview of what a modify shot keeps.

Every frame of the source (its exact frame count and rate, its audio copied untouched) goes
through a cheap restyle that is clearly labelled as one: a colour grade and posterisation, a
"DRAFT" banner with the prompt, and a line saying what is kept. On top, from the motion source:
skeletons (Characters = Poses; ``motion/skeleton.draw_skeleton``, OpenPose colours), person boxes (Blocking), face
boxes and landmarks (Face performance on), and the structure video's edges (weighted by
structure adherence) when the motion source extracted one. Guide frames (keyframes, first
frame) appear as an inset on their frame. Frames stream in chunks; memory is flat in clip length.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ...common.progress import CancelFn, ProgressFn, check_cancel
from ...motion.skeleton import draw_skeleton
from ...shot.request import ShotRequest
from ...shot.modify import modify_inputs, modify_size
from ...shot.tracking import MAX_TRACKS, TrackingSettings, most_prominent

MIN_CONFIDENCE = 0.3
FACE_COLOUR = (255, 235, 60)
EDGE_COLOUR = np.array((90, 220, 255), np.float32)
POSTER_LEVELS = 6


def _restyle_luts() -> np.ndarray:
    """(2, 3, 256) uint8: per tone (shadow, highlight) and channel, code value -> graded, posterised."""
    x = np.arange(256, dtype=np.float32) / 255.0
    tints = (np.array((0.80, 0.95, 1.20), np.float32), np.array((1.15, 1.0, 0.80), np.float32))
    step = 1.0 / (POSTER_LEVELS - 1)
    out = np.empty((2, 3, 256), np.uint8)
    for t, tint in enumerate(tints):
        for c in range(3):
            v = np.clip(x * tint[c], 0.0, 1.0)
            out[t, c] = (np.floor(v / step + 0.5) * step * 255.0 + 0.5).astype(np.uint8)
    return out


_LUTS = _restyle_luts()


def restyle(frame: np.ndarray) -> np.ndarray:
    """The cheap 'new world' (uint8 in/out): shadows cooled, highlights warmed (split by BT.709 luma),
    then posterised to a few levels; two table lookups per pixel, no float image."""
    import cv2

    f = np.ascontiguousarray(frame, np.uint8)
    out = cv2.LUT(f, _LUTS[0].T.reshape(256, 1, 3).copy())
    bright = cv2.LUT(f, _LUTS[1].T.reshape(256, 1, 3).copy())
    luma = cv2.transform(f, np.array([[0.2126, 0.7152, 0.0722]], np.float32))
    cv2.copyTo(bright, cv2.compare(luma, 128, cv2.CMP_GE), out)
    return out


def _index(tracks: Mapping[str, Any], kind: str) -> dict[int, list[tuple[int, Mapping]]]:
    out: dict[int, list] = {}
    for t in tracks.get(kind, []):
        for e in t.get("frames", ()):
            out.setdefault(e["frame"], []).append((t["id"], e))
    return out


class Overlays:
    """Draws what the motion source tracked onto output frames (coordinates scaled from the source)."""

    def __init__(self, tracks: Mapping[str, Any] | None, settings: TrackingSettings, src_size, out_size):
        self.tracks = tracks or {}
        self.settings = settings
        self.sx = out_size[0] / src_size[0]
        self.sy = out_size[1] / src_size[1]
        self.poses = _index(self.tracks, "poses")
        self.faces = _index(self.tracks, "faces")
        self.thick = max(1, int(round(min(out_size) / 180)))

    def _kept(self, index, kind: str, frame: int):
        entries = index.get(frame, [])
        if len(entries) > MAX_TRACKS:
            return most_prominent(self.tracks, kind, frame)
        return entries

    def draw(self, img: np.ndarray, frame: int) -> None:
        import cv2

        s = self.settings
        show_people = s.auto or s.characters in ("poses", "blocking", "default")
        blocking = not s.auto and s.characters == "blocking"
        if show_people:
            for _tid, e in self._kept(self.poses, "poses", frame):
                pts = [(x * self.sx, y * self.sy, c) for x, y, c in e["keypoints"]]
                if blocking:
                    seen = [(x, y) for x, y, c in pts if c >= MIN_CONFIDENCE]
                    if len(seen) >= 2:
                        xs, ys = [p[0] for p in seen], [p[1] for p in seen]
                        pad = 0.08 * max(max(xs) - min(xs), max(ys) - min(ys))
                        p0 = (int(min(xs) - pad), int(min(ys) - pad))
                        p1 = (int(max(xs) + pad), int(max(ys) + pad))
                        layer = img.copy()
                        cv2.rectangle(layer, p0, p1, (255, 140, 0), -1)
                        cv2.addWeighted(layer, 0.35, img, 0.65, 0, dst=img)
                        cv2.rectangle(img, p0, p1, (255, 140, 0), self.thick)
                    continue
                draw_skeleton(img, pts, dim_limbs=False, scale=max(0.5, self.thick / 2))
        show_faces = s.auto or s.face in ("on", "default")
        if show_faces:
            for _tid, e in self._kept(self.faces, "faces", frame):
                x0, y0, x1, y1 = e["box"]
                cv2.rectangle(img, (int(x0 * self.sx), int(y0 * self.sy)), (int(x1 * self.sx), int(y1 * self.sy)),
                              FACE_COLOUR, self.thick)
                for x, y in e.get("landmarks", ()):
                    cv2.circle(img, (int(round(x * self.sx)), int(round(y * self.sy))), max(1, self.thick // 2),
                               FACE_COLOUR, -1)


def _band(height: int, width: int | None = None, lines: int = 3) -> int:
    """The DRAFT banner's height in pixels (``_label``)."""
    scale = max(0.35, min(width or height, height) / 720.0 * 0.7)
    return (int(28 * scale) + 4) * lines + 6


def _label(img: np.ndarray, lines: list[str]) -> None:
    """The DRAFT banner: a dark band at the top with white text (clearly a preview)."""
    import cv2

    h, w = img.shape[:2]
    scale = max(0.35, min(w, h) / 720.0 * 0.7)
    line_h = int(28 * scale) + 4
    band = _band(h, w, len(lines))
    img[:band] = (img[:band].astype(np.uint16) * 3 // 10).astype(np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(img, text, (8, line_h * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale * (1.3 if i == 0 else 1.0),
                    (255, 80, 80) if i == 0 else (255, 255, 255), max(1, int(round(2 * scale))), cv2.LINE_AA)


def _inset(img: np.ndarray, guide: np.ndarray, caption: str, top: int | None = None, width: int = 4) -> None:
    """``guide`` (float 0..1 or uint8) as a thumbnail ``1/width`` of the frame wide, bottom right,
    or right with its top at ``top``; ``caption`` above it."""
    import cv2

    h, w = img.shape[:2]
    tw = max(16, w // width)
    gh, gw = guide.shape[:2]
    th = max(8, int(round(tw * gh / gw)))
    g = guide[..., :3] if guide.dtype == np.uint8 else \
        (np.clip(np.asarray(guide[..., :3], np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    thumb = cv2.resize(np.ascontiguousarray(g), (tw, th), interpolation=cv2.INTER_AREA)
    y0, x0 = (max(0, h - th - 8) if top is None else min(max(0, top), max(0, h - th))), max(0, w - tw - 8)
    y1, x1 = min(h, y0 + th), min(w, x0 + tw)
    img[y0:y1, x0:x1] = thumb[: y1 - y0, : x1 - x0]
    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), 2)
    cv2.putText(img, caption, (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


def _to_uint8(chunk: np.ndarray) -> np.ndarray:
    if chunk.dtype == np.uint8:
        return chunk
    if chunk.dtype == np.uint16:
        return (chunk >> 8).astype(np.uint8)
    x = np.clip(np.nan_to_num(chunk.astype(np.float32)), 0.0, None)  # scene-linear EXR: a plain tone map
    x = x / (1.0 + x)
    return (np.power(x, 1 / 2.2) * 255.0 + 0.5).astype(np.uint8)


def kept_line(settings: TrackingSettings, has_motion: bool, structure_kind: str | None) -> str:
    if settings.auto:
        keeps = "keeps: auto (the model chooses)"
    else:
        keeps = "keeps: " + settings.describe()
    if not has_motion:
        keeps += " · no motion source: nothing tracked to show"
    elif structure_kind:
        keeps += f" · structure: {structure_kind}"
    return keeps


def draft_frames(req: ShotRequest, *, cancelled: CancelFn | None = None, chunk: int = 8) -> Iterator[np.ndarray]:
    """The preview's frames, chunk by chunk (uint8 RGB at the output size)."""
    import cv2

    from ...footage.stream import FootageRef, iter_chunks

    inputs = modify_inputs(req)
    src = req.source
    out_w, out_h = modify_size(req.resolution, src.width, src.height)
    motion = inputs.motion
    overlays = Overlays(motion.tracks if motion is not None else None, inputs.tracking,
                        (src.width, src.height), (out_w, out_h))
    structure = None
    if motion is not None and motion.structure_video and Path(motion.structure_video).is_file():
        structure = iter_chunks(FootageRef(str(motion.structure_video)), chunk=chunk)
    weight = inputs.tracking.structure_adherence if inputs.tracking.structure_adherence is not None else 0.5
    guides = {k.frame: k for k in req.keyframes if k.image is not None}
    prompt = " ".join(req.prompt.split())
    lines = ["DRAFT - modify preview (not the final look)",
             (prompt[:70] + "...") if len(prompt) > 73 else prompt,
             kept_line(inputs.tracking, motion is not None, motion.structure_kind if motion is not None else None)]
    character = getattr(inputs, "character", None)
    if character is not None:  # the swap is the Local engine's (Wan Animate): the preview shows who comes in
        lines[2] += f" · character: {inputs.character_mode}"
        character = np.asarray(character)
    edges_left = np.empty((0, 0, 0, 3), np.uint8)
    frame_no = 0
    try:
        for block in iter_chunks(inputs.footage, chunk=chunk):
            check_cancel(cancelled)
            block = _to_uint8(block)
            out = np.empty((len(block), out_h, out_w, 3), np.uint8)
            for i, frame in enumerate(block):
                if frame.shape[:2] != (out_h, out_w):
                    frame = cv2.resize(frame, (out_w, out_h), interpolation=cv2.INTER_AREA
                                       if frame.shape[1] > out_w else cv2.INTER_LINEAR)
                img = restyle(frame)
                if structure is not None:
                    if len(edges_left) == 0:
                        edges_left = next(structure, np.empty((0, 0, 0, 3), np.uint8))
                    if len(edges_left):
                        e = _to_uint8(edges_left[:1])[0]
                        edges_left = edges_left[1:]
                        if e.shape[:2] != (out_h, out_w):
                            e = cv2.resize(e, (out_w, out_h), interpolation=cv2.INTER_AREA)
                        a = (e.astype(np.float32).max(axis=2, keepdims=True) / 255.0) * float(weight)
                        img = (img * (1 - a) + EDGE_COLOUR * a + 0.5).astype(np.uint8)
                overlays.draw(img, frame_no)
                if character is not None:
                    _inset(img, character, f"character ({inputs.character_mode})", top=_band(out_h, out_w) + 24, width=6)
                for g in range(frame_no - 3, frame_no + 4):
                    if g in guides:
                        _inset(img, guides[g].image, f"{guides[g].label} (frame {g})")
                        break
                _label(img, lines)
                out[i] = img
                frame_no += 1
            yield out
    finally:
        if structure is not None:
            structure.close()


def render_modify(req: ShotRequest, out_path: Path, *, metadata: Mapping[str, str] | None = None,
                  progress: ProgressFn | None = None, cancelled: CancelFn | None = None):
    """Encode the preview to ``out_path`` (SDR H.264 MP4, encode_mp4's Draft speed) with the source
    audio copied through, exactly the source's frame count and rate. Returns the encoder's ``EncodedVideo``."""
    from ...footage.encode import encode_mp4
    from ...footage.stream import audio_window

    inputs = modify_inputs(req)
    src = req.source
    window = audio_window(inputs.footage) if src.has_audio else None
    return encode_mp4(draft_frames(req, cancelled=cancelled), out_path, Fraction(src.fps),
                      input_space="sRGB - Texture", mode="sdr",
                      audio_from=inputs.footage.path if window else None, audio_window=window,
                      cancel=cancelled, total_frames=src.frame_count, metadata=metadata, progress=progress,
                      speed="draft")
