"""Director: directing tools for video generation in ComfyUI.

Importing the pack is cheap on purpose: ComfyUI start-up must not pay for PyAV, OpenEXR,
OpenColorIO, httpx or model code. The V3 glue is imported only when ComfyUI calls
``comfy_entrypoint``.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    """ComfyUI V3 entry point: returns the extension that lists Director's nodes."""
    from .nodes.extension import DirectorExtension

    return DirectorExtension()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
