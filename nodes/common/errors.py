"""Errors that name the input at fault and the limit it broke.

They derive from ValueError so ComfyUI shows the message as a node error, not a crash.

ComfyUI shows an error's type beside its message as ``<class module>.<class name>``; a custom
node's module name is its path on the server (``<server path>/custom_nodes/<pack>.nodes.common.
errors.ShotError``). Every Director error class, subclasses in other modules included, has the
short public module name :data:`PUBLIC_MODULE` instead: ``director.ShotError``.
"""

from __future__ import annotations


PUBLIC_MODULE = "director"


class DirectorError(ValueError):
    """A user-facing error. ``field`` names the input (widget, socket or option) at fault."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__module__ = PUBLIC_MODULE

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class ShotError(DirectorError):
    """A shot request that breaks a rule; raised before any work, upload or paid request."""


class EngineUnsupported(DirectorError):
    """The chosen engine cannot do what the shot asks; never silently ignored."""


class Cancelled(Exception):
    """The user interrupted the run. Not an error in the user's input."""


DirectorError.__module__ = Cancelled.__module__ = PUBLIC_MODULE
