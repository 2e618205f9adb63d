"""What a node's ``validate_inputs`` refuses with: its returned message (a one-input validator) or
the message of the DirectorError it raises (a several-input validator, reported once by ComfyUI)."""

from __future__ import annotations

from comfyui_director.nodes.common.errors import DirectorError


def refusal(validate, *args, **kwargs) -> str | bool:
    """The refusal message, or True when the inputs pass."""
    try:
        return validate(*args, **kwargs)
    except DirectorError as e:
        return str(e)
