"""ComfyUI glue shared by the nodes that run a shot on an engine (Generate, Modify, Reframe Video).

One flow for all of them: the Local engine expands into native nodes; any other engine gets its
credits estimated and shown, a new version folder, a render with progress and cancel, the folder
discarded when the render leaves it empty, and the result labelled with the colour space its own
files carry (``generation.result_colourspace``), reported on the node and previewed.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

from comfy_api.latest import io, ui
from comfy_execution.graph_utils import ExecutionBlocker

from ..common import glue
from ..common.errors import Cancelled
from ..engines.local.engine import LocalEngine
from ..engines.local.nodes import expansion
from ..footage.nodes import make_video
from ..footage.stream import FootageRef
from ..shot.engine import Engine, RenderHooks, RenderTarget, ShotResult
from ..shot.request import ShotRequest
from . import generation as gen


# (result, version folder, file stem) -> (the video to hand on, notes shown after " · " in info)
Finish = Callable[[ShotResult, Path, str], tuple[Path, list[str]]]


@dataclass
class EngineRun:
    """What a node returns after a render: its outputs and the ``ui`` dict for the frontend."""

    video: Any
    credits: int
    info: str
    ui: dict
    result: ShotResult
    preview_frames: Any = None  # an IMAGE batch, or an ExecutionBlocker when none were asked for


def output_ui(info: str, where: PurePosixPath | None) -> dict:
    """The node's ``ui``: the info line, and the video player when the file is in the output folder."""
    shown: dict = {"text": [info]}
    if where is not None:
        saved = ui.SavedResult(where.name, str(where.parent) if str(where.parent) != "." else "", io.FolderType.output)
        shown.update(ui.PreviewVideo([saved]).as_dict())
    return shown


@contextmanager
def version_folder(target: Path) -> Iterator[Path]:
    """A new version folder of ``target`` for the block to write into; removed again if the block
    fails before writing anything. A cancel ends as ComfyUI's own interrupt."""
    folder = gen.claim_output(target)
    try:
        yield folder
    except Cancelled:
        gen.discard_if_empty(folder)
        glue.raise_if_interrupted()
        raise
    except BaseException:
        gen.discard_if_empty(folder)
        raise


def _keep_card(engine: Engine, request: ShotRequest, result: ShotResult, credits: int, colourspace: str,
               video: Path) -> None:
    """Keep the shot card beside the delivered MP4 (what was asked for, for the editorial timeline)."""
    from ..shot.card import keep_card

    seed = getattr(getattr(engine, "settings", None), "seed", None)
    model = getattr(engine, "model", None)
    keep_card(request, result, credits=credits, colour_space=colourspace, video=video,
              seed=seed if isinstance(seed, int) else None, model=model if isinstance(model, str) else None)


def expand_local(node_id: str | None, engine: LocalEngine, request: ShotRequest, filename_prefix: str,
                 preview: int | None = 0) -> io.NodeOutput:
    """The Local engine renders as ComfyUI's own nodes: its plan as a node expansion whose last
    node writes the MP4. ``preview`` None: the node has no preview_frames output (three outputs)."""
    plan = engine.plan(request, filename_prefix, preview or 0)
    graph, outputs = expansion(plan, engine, request)
    glue.status_text(node_id, f"Local: {plan.summary()}")
    return io.NodeOutput(*(outputs if preview is not None else outputs[:3]), expand=graph)


async def run_engine(node_id: str | None, engine: Engine, request: ShotRequest, target: Path, *,
                     status: Callable[[int], str], total: int, label: str, finish: Finish | None = None,
                     preview: int | None = None) -> EngineRun:
    """Render ``request`` on ``engine`` into a new version folder of ``target`` (from
    ``generation.output_target``). ``status(estimate)`` is the line shown before rendering;
    ``total`` the progress bar's length; ``finish`` may hand on another file (the source's audio
    put back) and add notes; ``preview`` frames are taken from the result (None: no such output;
    0: the output is blocked with a message naming ``label``, the node's name)."""
    root = glue.output_dir()
    estimate = engine.estimate_credits(request)
    glue.status_text(node_id, status(estimate))
    hooks = RenderHooks(progress=glue.progress_for(node_id, total),
                        status=lambda text: glue.status_text(node_id, text), cancelled=glue.interrupted())
    with version_folder(target) as folder:
        result = await engine.render(request, RenderTarget(folder, target.name), hooks)
    credits = gen.new_credits(result, estimate)
    path, notes = finish(result, folder, target.name) if finish is not None else (Path(result.video), [])
    colourspace, colour_warning = gen.result_colourspace(result)
    _keep_card(engine, request, result, credits, colourspace, path)
    video = make_video(FootageRef(
        path=str(path), exr_frames=str(result.exr_frames) if result.exr_frames else None,
        colourspace=colourspace, draft=result.draft, metadata=result.metadata))
    where = gen.relative_to_output(path, root)
    notes = [*notes, colour_warning] if colour_warning else notes
    info = gen.info_line(engine, result, credits, where) + "".join(f" · {n}" for n in notes)
    glue.status_text(node_id, info)
    run = EngineRun(video, credits, info, output_ui(info, where), result)
    if preview:
        import torch

        run.preview_frames = torch.from_numpy(gen.preview_frames(path, preview, result.frame_count))
    elif preview is not None:
        run.preview_frames = ExecutionBlocker(f"{label}: set preview_frames above 0 to use the preview_frames "
                                              "output.")
    return run
