"""Whole-body keypoints (DWPose: 133 points, body, feet, face, hands) from the user's ONNX files.

ComfyUI users who run controlnet_aux already have the two DWPose models: a person detector
(``yolox_l.onnx``: input ``images`` [1, 3, 640, 640] BGR letterboxed with grey 114, output
[1, 8400, 85] YOLOX rows) and the whole-body model (``dw-ll_ucoco_384.onnx``: input [1, 3, 384,
288] RGB normalised with ImageNet mean/std, outputs ``simcc_x`` [1, 133, 576] and ``simcc_y``
[1, 133, 768], SimCC split ratio 2). They are looked for in ComfyUI's models folder
(``models/dwpose``, ``models/detection``, ``models/controlnet_aux``, or controlnet_aux's own
``ckpts/yzd-v/DWPose``) or in the folder named by ``DIRECTOR_DWPOSE_DIR``; nothing is
downloaded. They run through onnxruntime on the CPU (or the GPU provider when present).
No ComfyUI import at module level.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.errors import DirectorError

DETECTOR = "yolox_l.onnx"
POSE_MODEL = "dw-ll_ucoco_384.onnx"
FOLDERS = ("dwpose", "detection", "controlnet_aux", "custom_nodes/comfyui_controlnet_aux/ckpts/yzd-v/DWPose")
"""Where the files are looked for, relative to ComfyUI's folder (``models/<name>`` for the first three)."""
ENV = "DIRECTOR_DWPOSE_DIR"
DET_SIZE = (640, 640)
POSE_SIZE = (288, 384)  # width, height
SPLIT = 2.0
TOP_K = 200
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)
# the 133 whole-body points: 0-16 COCO body, 17-22 feet, 23-90 face (68), 91-111 left hand, 112-132 right hand
BODY, FEET, FACE, LEFT_HAND, RIGHT_HAND = slice(0, 17), slice(17, 23), slice(23, 91), slice(91, 112), slice(112, 133)


def search_folders() -> list[Path]:
    """The folders the DWPose files are looked for in, in order."""
    out: list[Path] = []
    if os.environ.get(ENV):
        out.append(Path(os.environ[ENV]))
    try:
        import folder_paths  # ComfyUI, when the pack runs inside it
    except ImportError:
        folder_paths = None
    if getattr(folder_paths, "models_dir", None):
        models = Path(folder_paths.models_dir)
        base = Path(getattr(folder_paths, "base_path", models.parent))
        for name in ("dwpose", "detection", "controlnet_aux"):
            try:
                out += [Path(p) for p in folder_paths.get_folder_paths(name)]
            except KeyError:
                pass
            out.append(models / name)
        out.append(base / FOLDERS[3])
    seen, unique = set(), []
    for p in out:
        if str(p) not in seen:
            seen.add(str(p))
            unique.append(p)
    return unique


@dataclass(frozen=True)
class DWPoseFiles:
    detector: Path
    pose: Path

    def describe(self) -> str:
        return f"DWPose ({self.detector.name} + {self.pose.name} in {self.pose.parent})"


def find_files(folders: list[Path] | None = None) -> DWPoseFiles | None:
    """The first folder holding both files (None when none does)."""
    for folder in folders if folders is not None else search_folders():
        det, pose = Path(folder) / DETECTOR, Path(folder) / POSE_MODEL
        if det.is_file() and pose.is_file():
            return DWPoseFiles(det, pose)
    return None


def require_files(folders: list[Path] | None = None) -> DWPoseFiles:
    """The files, or an error naming each missing file and the folders searched."""
    folders = folders if folders is not None else search_folders()
    found = find_files(folders)
    if found is not None:
        return found
    where = ", ".join(str(f) for f in folders) or f"(no ComfyUI models folder here; set {ENV})"
    raise DirectorError(
        f"keypoints: DWPose needs {DETECTOR} and {POSE_MODEL} together in one folder; not found in {where}. "
        f"Put them in ComfyUI's models/dwpose folder (controlnet_aux's DWPose files), or set {ENV}.",
        field="keypoints")


def _session(path: Path):
    try:
        import onnxruntime as ort
    except ImportError:
        raise DirectorError("keypoints: DWPose runs through onnxruntime; install it into ComfyUI's Python "
                            "(pip install onnxruntime).", field="keypoints") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    return ort.InferenceSession(str(path), opts, providers=providers)


def _nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    order = scores.argsort()[::-1]
    keep = []
    while len(order):
        i = order[0]
        keep.append(int(i))
        xx0 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy0 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx1 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy1 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.maximum(0, xx1 - xx0) * np.maximum(0, yy1 - yy0)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        ovr = inter / np.maximum(1e-9, area(boxes[i]) + area(boxes[order[1:]]) - inter)
        order = order[1:][ovr <= thr]
    return keep


class DWPose:
    """``people(rgb)`` -> person boxes; ``keypoints(rgb, boxes)`` -> one (133, 3) array per box."""

    def __init__(self, files: DWPoseFiles, *, score: float = 0.3, max_people: int = 8):
        self.files = files
        self._det = _session(files.detector)
        self._pose = _session(files.pose)
        self._det_in = self._det.get_inputs()[0].name
        self._pose_in = self._pose.get_inputs()[0].name
        self.score = score
        self.max_people = max_people

    def people(self, rgb: np.ndarray) -> list[np.ndarray]:
        import cv2

        h, w = rgb.shape[:2]
        r = min(DET_SIZE[0] / h, DET_SIZE[1] / w)
        padded = np.full((DET_SIZE[0], DET_SIZE[1], 3), 114, np.uint8)
        small = cv2.resize(rgb[:, :, ::-1], (int(w * r), int(h * r)), interpolation=cv2.INTER_LINEAR)
        padded[:small.shape[0], :small.shape[1]] = small
        out = self._det.run(None, {self._det_in: padded.transpose(2, 0, 1)[None].astype(np.float32)})[0][0]
        grids, strides = [], []
        for s in (8, 16, 32):
            hs, ws = DET_SIZE[0] // s, DET_SIZE[1] // s
            xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
            grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
            strides.append(np.full((hs * ws, 1), s))
        grids, strides = np.concatenate(grids), np.concatenate(strides)
        xy = (out[:, :2] + grids) * strides
        wh = np.exp(np.clip(out[:, 2:4], -10, 10)) * strides
        scores = out[:, 4] * out[:, 5]  # objectness x person
        boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1) / r
        ok = np.flatnonzero(scores > self.score)
        ok = ok[np.argsort(-scores[ok])[:TOP_K]]  # the surest candidates only: NMS is quadratic
        boxes, scores = boxes[ok], scores[ok]
        keep = _nms(boxes, scores, 0.45)[: self.max_people]
        return [np.clip(boxes[i], [0, 0, 0, 0], [w, h, w, h]) for i in keep
                if boxes[i, 2] - boxes[i, 0] > 4 and boxes[i, 3] - boxes[i, 1] > 4]

    def keypoints(self, rgb: np.ndarray, boxes) -> list[np.ndarray]:
        import cv2

        if not len(boxes):
            return []
        pw, ph = POSE_SIZE
        crops, frames = [], []
        for b in boxes:
            x0, y0, x1, y1 = b
            c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
            sw, sh = (x1 - x0) * 1.25, (y1 - y0) * 1.25
            if sw / sh > pw / ph:
                sh = sw * ph / pw
            else:
                sw = sh * pw / ph
            m = np.array([[pw / sw, 0, pw / 2 - c[0] * pw / sw], [0, ph / sh, ph / 2 - c[1] * ph / sh]], np.float32)
            crop = cv2.warpAffine(rgb, m, (pw, ph), flags=cv2.INTER_LINEAR)
            crops.append(((crop.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1))
            frames.append((c, sw, sh))
        out = []
        for crop, (c, sw, sh) in zip(crops, frames):  # batch 1: the exported models take one person
            sx, sy = self._pose.run(None, {self._pose_in: crop[None]})[:2]
            sx, sy = sx[0], sy[0]
            x = sx.argmax(1) / SPLIT
            y = sy.argmax(1) / SPLIT
            conf = np.minimum(sx.max(1), sy.max(1))
            kps = np.stack([c[0] + (x / pw - 0.5) * sw, c[1] + (y / ph - 0.5) * sh, np.clip(conf, 0.0, 1.0)], 1)
            out.append(kps.astype(np.float64))
        return out


def split(kps: np.ndarray) -> dict:
    """133 whole-body points -> the tracks.json groups: keypoints (17), feet (6), face_points (68), hands."""
    return {"keypoints": kps[BODY], "feet": kps[FEET], "face_points": kps[FACE],
            "hands": [kps[LEFT_HAND], kps[RIGHT_HAND]]}


class WholeBodyTracker:
    """People found by the DWPose detector (no face needed) plus any face seed it missed, with
    stable ids (tracker.IdTracker: motion and appearance), and 133 keypoints per person.
    ``process(rgb, frame, faces)`` -> poses.Pose list with ``extra`` holding feet, face and hands."""

    def __init__(self, width: int, height: int, files: DWPoseFiles, reserve_id=None, max_people: int = 8):
        from .tracker import IdTracker

        self.width, self.height = int(width), int(height)
        self.model = DWPose(files, max_people=max_people)
        self.ids = IdTracker(coast=24, reid_distance=0.25)
        self._public: dict[int, tuple[int, str]] = {}
        self._used: set[int] = set()
        self._next = 1000
        self._reserve = reserve_id or self._own_id

    def _own_id(self) -> int:
        self._next += 1
        return self._next - 1

    def process(self, rgb: np.ndarray, frame: int, faces=()) -> list:
        from .poses import Pose, body_box
        from .tracker import appearance

        boxes = [(b, "body") for b in self.model.people(rgb)]
        for _fid, fb in faces:  # a face the detector found no body around: its body region
            cx, cy = (fb[0] + fb[2]) / 2, (fb[1] + fb[3]) / 2
            if not any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b, _ in boxes):
                boxes.append((body_box(fb, self.width, self.height), "face"))
        if not boxes:
            return []
        looks = [appearance(rgb, b) for b, _ in boxes]
        tids = self.ids.update(frame, [b for b, _ in boxes], looks)
        kps_all = self.model.keypoints(rgb, [b for b, _ in boxes])
        out = []
        for (box, how), tid, kps in zip(boxes, tids, kps_all):
            if tid not in self._public:
                face = next((fid for fid, fb in faces if box[0] <= (fb[0] + fb[2]) / 2 <= box[2]
                             and box[1] <= (fb[1] + fb[3]) / 2 <= box[1] + 0.45 * (box[3] - box[1])), None)
                pid = face if face is not None and face not in self._used else self._reserve()
                self._used.add(pid)
                self._public[tid] = (pid, how)
            pid, found = self._public[tid]
            groups = split(kps)
            out.append(Pose(pid, groups["keypoints"], found, tuple(float(v) for v in box),
                            extra={"feet": groups["feet"], "face_points": groups["face_points"],
                                   "hands": groups["hands"]}))
        return out

    def close(self) -> None:
        self.model = None
