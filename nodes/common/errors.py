"""Errors that name the input at fault and the limit it broke.

They derive from ValueError so ComfyUI shows the message as a node error, not a crash.

ComfyUI shows an error's type beside its message as ``<class module>.<class name>``; a custom
node's module name is its path on the server (``<server path>/custom_nodes/<pack>.nodes.common.
errors.ShotError``). Every Director error class, subclasses in other modules included, has the
short public module name :data:`PUBLIC_MODULE` instead: ``director.ShotError``. Pickling
(e.g. across a process pool) still finds the class through its real module.
"""

from __future__ import annotations

import importlib


PUBLIC_MODULE = "director"


def _rebuild(module: str, qualname: str, args: tuple, state: dict):
    """Unpickle a Director error: its class from the real module, then its message and fields."""
    cls = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err


class DirectorError(ValueError):
    """A user-facing error. ``field`` names the input (widget, socket or option) at fault."""

    _real_module = __name__

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._real_module = cls.__module__
        cls.__module__ = PUBLIC_MODULE

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field

    def __reduce__(self):
        return _rebuild, (type(self)._real_module, type(self).__qualname__, self.args, dict(self.__dict__))


class ShotError(DirectorError):
    """A shot request that breaks a rule; raised before any work, upload or paid request."""


class EngineUnsupported(DirectorError):
    """The chosen engine cannot do what the shot asks; never silently ignored."""


class Cancelled(Exception):
    """The user interrupted the run. Not an error in the user's input."""

    def __reduce__(self):
        return _rebuild, (__name__, "Cancelled", self.args, dict(self.__dict__))


DirectorError.__module__ = Cancelled.__module__ = PUBLIC_MODULE
