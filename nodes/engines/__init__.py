"""Engines that turn a :class:`~..shot.request.ShotRequest` into a clip on disk.

One sub-package per engine (``draft``: free CPU animatic; ``luma``: Luma Ray3.2 over HTTP). Each
implements :class:`~..shot.engine.Engine`; its ``nodes.py`` offers a node that outputs a
configured engine on a ``DIRECTOR_ENGINE`` socket.
"""
