"""Which files a node may read: the input-path policy (no ComfyUI import; glue passes the folders).

A node reads footage only from ComfyUI's input, output and temp folders, or the pack's own
samples. Two ways to name a file:

- a *choice* from a file list (``video`` combo): a name relative to the input folder, optionally
  annotated like core's lists (``"clip.mp4 [output]"``), or ``director-samples/<name>`` for a
  sample. ``..`` parts, absolute names and symlinks that lead out of that folder are refused
  here, not left to ComfyUI core's own check (a node that validates its inputs itself skips it);
- a typed *path* (``path`` string): absolute, or relative to the input folder, then output, then
  temp; it must resolve (symlinks followed) inside one of them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DirectorError
from .paths import resolve_inside

_ANNOTATED = re.compile(r"^(?P<name>.*?)\s*\[(?P<root>input|output|temp)\]$")


@dataclass(frozen=True)
class InputRoots:
    """The folders reads may come from."""

    input: Path
    output: Path
    temp: Path
    samples: Path | None = None
    samples_prefix: str = "director-samples/"

    def folders(self) -> list[Path]:
        return [Path(p).resolve() for p in (self.input, self.output, self.temp)]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(os.path.commonpath([str(r), str(path)]) == str(r) for r in roots)


def resolve_choice(name: str, roots: InputRoots, *, field: str = "video") -> Path:
    """The file a list choice names (see the module docstring); DirectorError naming ``field``."""
    name = (name or "").strip()
    if not name:
        raise DirectorError(f"{field}: no file chosen.", field=field)
    if roots.samples is not None and name.startswith(roots.samples_prefix):
        real = resolve_inside(roots.samples, name[len(roots.samples_prefix):], field=field, folder="samples folder")
        if not real.is_file():
            raise DirectorError(f"{field}: sample '{name}' does not exist.", field=field)
        return real
    m = _ANNOTATED.match(name)
    where, rel = (m.group("root"), m.group("name")) if m else ("input", name)
    real = resolve_inside(getattr(roots, where), rel, field=field, folder=f"{where} folder")
    if not real.is_file():
        raise DirectorError(f"{field}: '{name}' does not exist in ComfyUI's {where} folder.", field=field)
    return real


def resolve_typed_path(path: str, roots: InputRoots, *, field: str = "path") -> Path:
    """The file a typed path names: absolute or relative (input, then output, then temp folder),
    inside ComfyUI's input/output/temp folders or the samples."""
    allowed = roots.folders() + ([Path(roots.samples).resolve()] if roots.samples is not None else [])
    raw = Path(os.path.expanduser(path.strip()))
    candidates = [raw] if raw.is_absolute() else [r / raw for r in roots.folders()]
    for cand in candidates:
        real = cand.resolve()
        if not _inside(real, allowed):
            raise DirectorError(
                f"{field}: '{path}' is outside ComfyUI's input, output and temp folders; Director reads "
                f"footage only from those (or its samples). Copy the file into ComfyUI's input folder.", field=field)
        if real.is_file():
            return real
    raise DirectorError(f"{field}: '{path}' does not exist in ComfyUI's input, output or temp folder.", field=field)


def resolve_input_file(choice: str, path: str, roots: InputRoots, *, choice_field: str = "video",
                       path_field: str = "path") -> Path:
    """``path`` when one is typed, else the list ``choice``."""
    if (path or "").strip():
        return resolve_typed_path(path, roots, field=path_field)
    return resolve_choice(choice, roots, field=choice_field)
