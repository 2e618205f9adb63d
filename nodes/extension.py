"""The ComfyUI extension: collects every capability's node classes.

Each capability folder's ``nodes.py`` exports ``NODES``. A capability that fails to import is
logged and skipped so one missing optional library cannot hide the rest of the pack.
"""

from __future__ import annotations

import importlib
import logging

from comfy_api.latest import ComfyExtension

log = logging.getLogger("director")

NODE_MODULES = (
    "footage.nodes",
    "exr.nodes",
    "keyframes.nodes",
    "generate.nodes",
    "engines.draft.nodes",
    "engines.luma.nodes",
    "engines.local.nodes",
    "modify.nodes",
    "reframe.nodes",
    "motion.nodes",
    "editorial.nodes",
)


def collect_nodes(strict: bool = False) -> list:
    nodes: list = []
    for mod_name in NODE_MODULES:
        try:
            mod = importlib.import_module(f".{mod_name}", __package__)
        except Exception as e:  # noqa: BLE001 - report and keep the rest of the pack usable
            if strict:
                raise
            log.exception("Director: %s failed to load: %s", mod_name, e)
            continue
        nodes.extend(getattr(mod, "NODES", ()))
    return nodes


class DirectorExtension(ComfyExtension):
    async def on_load(self) -> None:
        """Put the sample footage where the frontend can preview it (input/director-samples/)."""
        try:
            import folder_paths

            from .footage.nodes import publish_samples

            publish_samples(folder_paths.get_input_directory())
        except Exception as e:  # noqa: BLE001 - a read-only input folder must not stop the pack
            log.warning("Director: sample footage not copied to the input folder: %s", e)

    async def get_node_list(self) -> list:
        return collect_nodes()
