"""A tiny stand-in for the parts of ComfyUI that Director's glue touches.

Installed into ``sys.modules`` by ``conftest.py`` so glue contract tests run without ComfyUI.
It records schemas instead of validating them; the real check is the ``comfyui``-marked suite
that runs the glue inside a real ComfyUI. Keep it small: it documents Director's dependency
surface on ComfyUI.
"""

from __future__ import annotations

import enum
import os
import sys
import tempfile
import types
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any


# --- comfy_api.latest.io ----------------------------------------------------------------------
@dataclass
class _Port:
    kind: str
    id: str | None
    kw: dict = field(default_factory=dict)

    @property
    def optional(self) -> bool:
        return bool(self.kw.get("optional"))


class _Type:
    io_type = "*"

    @classmethod
    def Input(cls, id, **kw):
        return _Port(cls.io_type, id, kw)

    @classmethod
    def Output(cls, id=None, **kw):
        return _Port(cls.io_type, id, kw)


def _mk(name, io_type):
    return type(name, (_Type,), {"io_type": io_type})


io = types.ModuleType("comfy_api.latest.io")
for _n, _t in {
    "Boolean": "BOOLEAN", "Int": "INT", "Float": "FLOAT", "String": "STRING", "Combo": "COMBO",
    "Image": "IMAGE", "Mask": "MASK", "Audio": "AUDIO", "Video": "VIDEO", "Latent": "LATENT",
    "AnyType": "*", "Model": "MODEL", "Vae": "VAE", "Clip": "CLIP", "Conditioning": "CONDITIONING",
    "ClipVision": "CLIP_VISION",
}.items():
    setattr(io, _n, _mk(_n, _t))


def Custom(io_type):
    return _mk(f"Custom_{io_type}", io_type)


io.Custom = Custom


class Schema:
    def __init__(self, node_id, display_name=None, category="sd", inputs=(), outputs=(), hidden=(),
                 description="", is_output_node=False, **kw):
        self.node_id, self.display_name, self.category = node_id, display_name, category
        self.inputs, self.outputs, self.hidden = list(inputs), list(outputs), list(hidden)
        self.description, self.is_output_node, self.extra = description, is_output_node, kw


class _Hidden:
    def __getattr__(self, name):
        return None


class ComfyNode:
    hidden = _Hidden()

    @classmethod
    def GET_SCHEMA(cls):
        return cls.define_schema()


class NodeOutput:
    def __init__(self, *args, ui=None, expand=None, block_execution=None):
        self.args, self.result, self.ui, self.expand = args, args, ui, expand


class Hidden(str, enum.Enum):
    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"


class UploadType(str, enum.Enum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"


class FolderType(str, enum.Enum):
    input = "input"
    output = "output"
    temp = "temp"


class NumberDisplay(str, enum.Enum):
    number = "number"
    slider = "slider"


for _n, _v in dict(Schema=Schema, ComfyNode=ComfyNode, NodeOutput=NodeOutput, Hidden=Hidden,
                   UploadType=UploadType, FolderType=FolderType, NumberDisplay=NumberDisplay).items():
    setattr(io, _n, _v)

# --- comfy_api.latest.ui ----------------------------------------------------------------------
ui = types.ModuleType("comfy_api.latest.ui")


@dataclass
class SavedResult:
    filename: str
    subfolder: str
    type: Any

    def as_dict(self):
        return {"filename": self.filename, "subfolder": self.subfolder, "type": getattr(self.type, "value", self.type)}


class _UI:
    key = "ui"

    def __init__(self, values, **kw):
        self.values = values
        self.kw = kw

    def as_dict(self):
        vals = self.values if isinstance(self.values, list) else [self.values]
        return {self.key: [v.as_dict() if hasattr(v, "as_dict") else v for v in vals]}


class PreviewVideo(_UI):
    key = "images"

    def as_dict(self):
        return {"images": [v.as_dict() for v in self.values], "animated": (True,)}


class PreviewText(_UI):
    key = "text"


class PreviewImage(_UI):
    key = "images"


ui.SavedResult, ui.PreviewVideo, ui.PreviewText, ui.PreviewImage = SavedResult, PreviewVideo, PreviewText, PreviewImage


# --- comfy_api.latest: VideoFromFile and the extension base -----------------------------------
class VideoInput:
    pass


class VideoFromFile(VideoInput):
    """Stand-in for ComfyUI's lazy file-backed VIDEO: metadata from the file, nothing decoded."""

    def __init__(self, file, *, start_time: float = 0, duration: float = 0):
        self._file, self._start, self._dur = file, start_time, duration

    def get_stream_source(self):
        return self._file

    def get_active_trim_window(self):
        return (self._start, self._dur)

    def _probe(self):
        import av

        with av.open(self._file) as c:
            s = c.streams.video[0]
            return s

    def get_frame_rate(self) -> Fraction:
        import av

        with av.open(self._file) as c:
            return Fraction(c.streams.video[0].average_rate)

    def get_dimensions(self):
        import av

        with av.open(self._file) as c:
            s = c.streams.video[0]
            return s.width, s.height

    def save_to(self, path, format="auto", codec="auto", metadata=None, bit_depth=None, crf=None,
                color_space=None, preset=None):
        """Newest core's signature; records the call and copies the streams (core's no-edit path)."""
        import av

        VideoFromFile.saved.append(dict(file=self._file, path=path, format=format, codec=codec, bit_depth=bit_depth,
                                        crf=crf, color_space=color_space, preset=preset))
        with av.open(self._file) as src, av.open(path, "w", format="mp4") as dst:
            streams = {s: dst.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
            for pkt in src.demux():
                if pkt.stream in streams and pkt.dts is not None:
                    pkt.stream = streams[pkt.stream]
                    dst.mux(pkt)


VideoFromFile.saved = []


class ComfyExtension:
    async def on_load(self):
        return None

    async def get_node_list(self):
        return []


latest = types.ModuleType("comfy_api.latest")
latest.io, latest.ui, latest.ComfyExtension = io, ui, ComfyExtension
latest.InputImpl = types.SimpleNamespace(VideoFromFile=VideoFromFile)
latest.Input = types.SimpleNamespace(Video=VideoInput)
@dataclass
class VideoComponents:
    images: Any
    frame_rate: Fraction
    audio: Any = None
    metadata: Any = None
    alpha: Any = None


latest.Types = types.SimpleNamespace(VideoComponents=VideoComponents)
comfy_api = types.ModuleType("comfy_api")
comfy_api.latest = latest

# --- folder_paths -----------------------------------------------------------------------------
folder_paths = types.ModuleType("folder_paths")
_base = tempfile.mkdtemp(prefix="director-comfy-stub-")
folder_paths.base = _base
for _d in ("input", "output", "temp", "user"):
    os.makedirs(os.path.join(_base, _d), exist_ok=True)
folder_paths.get_input_directory = lambda: os.path.join(folder_paths.base, "input")
folder_paths.get_output_directory = lambda: os.path.join(folder_paths.base, "output")
folder_paths.get_temp_directory = lambda: os.path.join(folder_paths.base, "temp")
folder_paths.get_user_directory = lambda: os.path.join(folder_paths.base, "user")


def _annotated(name, default_dir=None):
    for tag, fn in (("[output]", folder_paths.get_output_directory), ("[input]", folder_paths.get_input_directory),
                    ("[temp]", folder_paths.get_temp_directory)):
        if name.endswith(" " + tag):
            return os.path.join(fn(), name[: -len(tag) - 1])
    return os.path.join(default_dir or folder_paths.get_input_directory(), name)


def get_annotated_filepath(name, default_dir=None):
    path = os.path.realpath(_annotated(name, default_dir))
    roots = [os.path.realpath(f()) for f in (folder_paths.get_output_directory, folder_paths.get_input_directory,
                                             folder_paths.get_temp_directory)]
    if not any(os.path.commonpath([r, path]) == r for r in roots):
        raise ValueError(f"Invalid file path: {name}")
    return path


folder_paths.get_annotated_filepath = get_annotated_filepath
folder_paths.exists_annotated_filepath = lambda name: os.path.exists(_annotated(name))
folder_paths.filter_files_content_types = lambda files, types_: [
    f for f in files if os.path.splitext(f)[1].lower() in (".mp4", ".mov", ".wmv", ".mkv", ".webm", ".avi")
] if "video" in types_ else list(files)


def get_save_image_path(filename_prefix, output_dir, image_width=0, image_height=0):
    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    full = os.path.join(output_dir, subfolder)
    if os.path.commonpath((output_dir, os.path.abspath(full))) != output_dir:
        raise Exception("Saving image outside the output folder is not allowed.")
    os.makedirs(full, exist_ok=True)
    counter = 1
    for f in os.listdir(full):
        if f.startswith(filename + "_"):
            try:
                counter = max(counter, int(f[len(filename) + 1:].split(".")[0].split("_")[0]) + 1)
            except ValueError:
                pass
    return full, filename, counter, subfolder, filename_prefix


folder_paths.get_save_image_path = get_save_image_path

# --- comfy.utils / comfy.model_management / server -------------------------------------------
comfy = types.ModuleType("comfy")
comfy_utils = types.ModuleType("comfy.utils")
comfy_mm = types.ModuleType("comfy.model_management")
PROGRESS_EVENTS: list = []
INTERRUPT = {"flag": False}


class ProgressBar:
    def __init__(self, total, node_id=None):
        self.total, self.current, self.node_id = total, 0, node_id

    def update_absolute(self, value, total=None, preview=None):
        if total is not None:
            self.total = total
        self.current = min(value, self.total)
        PROGRESS_EVENTS.append((self.node_id, self.current, self.total))

    def update(self, value):
        self.update_absolute(self.current + value)


class InterruptProcessingException(BaseException):
    pass


def throw_exception_if_processing_interrupted():
    if INTERRUPT["flag"]:
        INTERRUPT["flag"] = False
        raise InterruptProcessingException()


comfy_utils.ProgressBar = ProgressBar
comfy_mm.processing_interrupted = lambda: INTERRUPT["flag"]
comfy_mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
comfy_mm.InterruptProcessingException = InterruptProcessingException
comfy.utils, comfy.model_management = comfy_utils, comfy_mm

server = types.ModuleType("server")
PROGRESS_TEXT: list = []


class _PromptServer:
    def send_progress_text(self, text, node_id, sid=None):
        PROGRESS_TEXT.append((node_id, text))

    def send_sync(self, event, data, sid=None):
        PROGRESS_TEXT.append((event, data))


server.PromptServer = types.SimpleNamespace(instance=_PromptServer())

# --- comfy_execution.graph_utils: ExecutionBlocker (an output value that blocks its users) ------
comfy_execution = types.ModuleType("comfy_execution")
graph_utils = types.ModuleType("comfy_execution.graph_utils")


class ExecutionBlocker:
    def __init__(self, message):
        self.message = message


graph_utils.ExecutionBlocker = ExecutionBlocker


class _GraphNode:
    def __init__(self, id, class_type, inputs):
        self.id, self.class_type, self.inputs = id, class_type, inputs

    def out(self, index):
        return [self.id, index]


class GraphBuilder:
    """ComfyUI's GraphBuilder, reduced to what expansions use: node(), out(), finalize()."""

    def __init__(self, prefix="stub."):
        self.prefix, self.nodes, self.id_gen = prefix, {}, 1

    def node(self, class_type, id=None, **kwargs):
        if id is None:
            id = str(self.id_gen)
            self.id_gen += 1
        node = _GraphNode(self.prefix + id, class_type, kwargs)
        self.nodes[node.id] = node
        return node

    def finalize(self):
        return {i: {"class_type": n.class_type, "inputs": n.inputs} for i, n in self.nodes.items()}


graph_utils.GraphBuilder = GraphBuilder
comfy_execution.graph_utils = graph_utils

MODULES = {
    "comfy_api": comfy_api, "comfy_api.latest": latest, "comfy_api.latest.io": io, "comfy_api.latest.ui": ui,
    "folder_paths": folder_paths, "comfy": comfy, "comfy.utils": comfy_utils,
    "comfy.model_management": comfy_mm, "server": server,
    "comfy_execution": comfy_execution, "comfy_execution.graph_utils": graph_utils,
}


def install():
    """Put the stand-in modules into sys.modules (no-op for names already present)."""
    for name, mod in MODULES.items():
        sys.modules.setdefault(name, mod)
