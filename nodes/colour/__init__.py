"""Colour management through OpenColorIO: configs, colour-space names, transforms for frames."""
