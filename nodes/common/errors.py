"""Errors that name the input at fault and the limit it broke.

They derive from ValueError so ComfyUI shows the message as a node error, not a crash.
"""

from __future__ import annotations


class DirectorError(ValueError):
    """A user-facing error. ``field`` names the input (widget, socket or option) at fault."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class ShotError(DirectorError):
    """A shot request that breaks a rule; raised before any work, upload or paid request."""


class EngineUnsupported(DirectorError):
    """The chosen engine cannot do what the shot asks; never silently ignored."""


class Cancelled(Exception):
    """The user interrupted the run. Not an error in the user's input."""
