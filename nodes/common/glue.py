"""Glue helpers shared by every node module: custom socket types, progress, interrupts, folders.

This module imports ComfyUI and is only imported from ``nodes.py`` glue modules, which ComfyUI
loads lazily through ``comfy_entrypoint``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from comfy_api.latest import io

from . import paths
from .errors import DirectorError
from .paths import shown_path  # noqa: F401  (for nodes.py status lines: glue.shown_path)
from .inputs import InputRoots
from .progress import CancelFn, ProgressFn

# Custom socket types. Names are global in ComfyUI: every one starts with DIRECTOR_.
Engine = io.Custom("DIRECTOR_ENGINE")
Keyframes = io.Custom("DIRECTOR_KEYFRAMES")

CATEGORY = "Director"


def validation(check: Callable[..., object], *args, **kwargs) -> bool | str:
    """What a ONE-input ``validate_inputs`` returns: True when ``check(*args, **kwargs)`` passes,
    else the message of the DirectorError (any ValueError) it raised, which ComfyUI shows on that
    input when the prompt is queued. A validator taking several inputs uses :func:`refusal`."""
    try:
        check(*args, **kwargs)
    except ValueError as e:
        return str(e)
    return True


def refusal(check: Callable[..., object], *args, **kwargs) -> bool:
    """What a ``validate_inputs`` taking SEVERAL inputs does: True when ``check(*args, **kwargs)``
    passes, else it raises the refusal as a DirectorError whose message names the input at fault.

    Why raise: ComfyUI repeats a returned message once per argument of ``validate_inputs`` ("8
    ERRORS" for one problem, each blamed on a different widget); a raised error is reported once.
    Either way the prompt is refused with HTTP 400 before anything runs."""
    try:
        check(*args, **kwargs)
    except DirectorError:
        raise
    except ValueError as e:
        raise DirectorError(str(e)) from None
    return True


def progress_for(node_id: str | None, total: int) -> ProgressFn:
    """A core ProgressFn that drives ComfyUI's progress bar (and shows text on the node)."""
    import comfy.utils

    bar = comfy.utils.ProgressBar(max(int(total), 1), node_id=node_id)

    def progress(done: int, total_: int, text: str | None = None) -> None:
        bar.update_absolute(int(done), int(total_) if total_ else None)
        if text:
            status_text(node_id, text)

    return progress


def status_text(node_id: str | None, text: str) -> None:
    """Show a line of text on the node (ComfyUI's progress text channel)."""
    if node_id is None:
        return
    try:
        from server import PromptServer

        PromptServer.instance.send_progress_text(text, node_id)
    except Exception:  # the UI channel is best effort; never fail a render over it
        pass


def interrupted() -> CancelFn:
    """A core CancelFn that peeks at ComfyUI's interrupt flag without clearing it."""
    import comfy.model_management as mm

    return mm.processing_interrupted


def raise_if_interrupted() -> None:
    """Turn a pending interrupt into ComfyUI's own exception (shown as 'interrupted')."""
    import comfy.model_management as mm

    mm.throw_exception_if_processing_interrupted()


def output_dir() -> Path:
    import folder_paths

    return Path(folder_paths.get_output_directory())


def temp_dir() -> Path:
    import folder_paths

    return Path(folder_paths.get_temp_directory())


def user_dir() -> Path:
    import folder_paths

    return Path(folder_paths.get_user_directory())


def spill_dir() -> Path:
    """Where Director spills in-memory footage to files: ComfyUI's temp folder, which ComfyUI
    empties when it starts and exits."""
    return temp_dir() / paths.SPILL_FOLDER


def input_roots(samples: Path | None = None, samples_prefix: str = "director-samples/") -> InputRoots:
    """ComfyUI's folders as the input-path policy (``common.inputs``) takes them."""
    import folder_paths

    return InputRoots(Path(folder_paths.get_input_directory()), Path(folder_paths.get_output_directory()),
                      Path(folder_paths.get_temp_directory()), samples, samples_prefix)


def _named_roots() -> dict[str, str]:
    import folder_paths

    return {"input": folder_paths.get_input_directory(), "output": folder_paths.get_output_directory(),
            "temp": folder_paths.get_temp_directory(), "user": folder_paths.get_user_directory()}


paths.set_named_roots(_named_roots)  # errors and status lines name files relative to these
