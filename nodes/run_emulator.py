"""``director emulator``: start the bundled Luma API emulator (loopback, no credits, no network).

The same flags as ``python -m comfyui_director.nodes.engines.luma.emulator`` (``director emulator
--help`` lists them); point ComfyUI at it with ``LUMA_BASE_URL=http://127.0.0.1:<port>/v1``.
"""

from __future__ import annotations

import argparse
import importlib




def register(subparsers) -> None:
    p = subparsers.add_parser("emulator", add_help=False, prefix_chars="\0",
                              help="start the bundled Luma API emulator (flags: director emulator --help)")
    p.add_argument("flags", nargs=argparse.REMAINDER)
    p.set_defaults(run=_run)


def _run(args) -> int:
    emulator = importlib.import_module(".engines.luma.emulator", __package__)
    emulator.main(list(args.flags))
    return 0
