"""Progress and cancellation hooks that core code calls without knowing about ComfyUI.

The glue passes callables that talk to ComfyUI's ProgressBar and interrupt flag; tests pass
plain functions. ``NullProgress``/``never_cancelled`` are the defaults for library use.
"""

from __future__ import annotations

from typing import Callable, Protocol

from .errors import Cancelled


class ProgressFn(Protocol):
    def __call__(self, done: int, total: int, text: str | None = None) -> None: ...


CancelFn = Callable[[], bool]
"""Returns True once the user asked to stop. Must be cheap: core loops call it per frame/chunk."""


def null_progress(done: int, total: int, text: str | None = None) -> None:
    return None


def never_cancelled() -> bool:
    return False


def check_cancel(cancel: CancelFn | None) -> None:
    """Raise :class:`Cancelled` when ``cancel()`` says so."""
    if cancel is not None and cancel():
        raise Cancelled("Interrupted by the user.")
