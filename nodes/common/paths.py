"""Output paths that stay inside their root, never overwrite, and appear atomically.

Rules every writer in the pack follows:
- a relative name may not climb out of its root (``..``) nor be absolute;
- a sequence or file that exists is never written over: the next free ``_vNNN`` is used;
- each file is written to a temporary name in the same folder and renamed into place, so a
  crash or a full disk leaves whole files only.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator, Mapping

from .errors import DirectorError

_BAD_CHARS = re.compile(r"[\x00-\x1f<>:\"|?*]")
SPILL_FOLDER = "director-spill"
"""Folder (inside ComfyUI's temp folder) where in-memory VIDEOs are spilled to files."""


def safe_relative(name: str, *, field: str = "filename_prefix", folder: str = "output folder") -> PurePosixPath:
    """Validate a user-given relative name ("shots/sh010/plate") inside ``folder`` and return it.

    Refuses absolute paths, drive letters, ``..`` parts and control characters.
    """
    raw = (name or "").strip().replace("\\", "/")
    if not raw:
        raise DirectorError(f"{field}: the name is empty.", field=field)
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise DirectorError(
            f"{field}: '{name}' is an absolute path; give a name relative to the {folder}.",
            field=field,
        )
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise DirectorError(f"{field}: '{name}' climbs out of the {folder} with '..'.", field=field)
    if any(_BAD_CHARS.search(p) for p in parts):
        raise DirectorError(f"{field}: '{name}' contains characters a file name cannot hold.", field=field)
    if not parts:
        raise DirectorError(f"{field}: the name is empty.", field=field)
    return PurePosixPath(*parts)


def resolve_inside(root: str | os.PathLike, name: str, *, field: str = "filename_prefix",
                   folder: str = "output folder") -> Path:
    """Join ``name`` onto ``root`` and prove the result (symlinks resolved) stays inside it."""
    root_p = Path(root).resolve()
    target = (root_p / safe_relative(name, field=field, folder=folder)).resolve()
    if os.path.commonpath([root_p, target]) != str(root_p):
        raise DirectorError(f"{field}: '{name}' resolves outside the {folder}.", field=field)
    return target


def next_free_version(parent: Path, stem: str) -> Path:
    """Return ``parent/stem_v001`` (or the next free version) without creating it."""
    pat = re.compile(rf"^{re.escape(stem)}_v(\d{{3,}})$")
    taken = [int(m.group(1)) for p in (parent.iterdir() if parent.is_dir() else ()) if (m := pat.match(p.name))]
    return parent / f"{stem}_v{(max(taken) + 1) if taken else 1:03d}"


def claim_first_free(candidates: Iterable[Path], create: Callable[[Path], object], what: str) -> Path:
    """Create the first candidate not taken yet and return it. ``create`` must be atomic and raise
    FileExistsError when the name is taken (mkdir, os.link), so two writers never get one name."""
    for cand in candidates:
        try:
            create(cand)
            return cand
        except FileExistsError:
            continue
    raise DirectorError(f"No free name for {what}.")


def numbered_names(folder: Path, stem: str, suffix: str = "", limit: int = 999) -> Iterator[Path]:
    """``stem.suffix``, then ``stem_2.suffix``, ``stem_3.suffix`` ... in ``folder``."""
    for n in range(1, limit + 1):
        yield folder / (f"{stem}{suffix}" if n == 1 else f"{stem}_{n}{suffix}")


def claim_version_dir(parent: Path, stem: str) -> Path:
    """Create and return a new, empty version folder ``stem_vNNN`` (race-safe: mkdir is atomic)."""
    ensure_writable_dir(parent)
    return claim_first_free((next_free_version(parent, stem) for _ in range(1000)), Path.mkdir,
                            f"a version folder '{stem}' in {shown_path(parent)}")


def next_free_file(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem_00001.suffix`` style: the next counter after every existing one."""
    pat = re.compile(rf"^{re.escape(stem)}_(\d{{5,}}){re.escape(suffix)}$")
    taken = [int(m.group(1)) for p in (folder.iterdir() if folder.is_dir() else ()) if (m := pat.match(p.name))]
    return folder / f"{stem}_{(max(taken) + 1) if taken else 1:05d}{suffix}"


def ensure_writable_dir(folder: Path, *, field: str = "output folder") -> Path:
    """Create ``folder`` if needed and fail early, with a clear message, if it cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DirectorError(f"{field}: cannot create '{shown_path(folder)}': {e.strerror or e}.", field=field) from e
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DirectorError(f"{field}: '{shown_path(folder)}' is not writable (permission denied).", field=field)
    return folder


@contextlib.contextmanager
def atomic_path(final: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only if the block succeeds.

    The temporary file is removed on any failure (including a full disk), so nothing partial is
    ever visible under the final name, and an existing ``final`` is never replaced unless asked.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise DirectorError(f"'{final.name}' already exists; Director never writes over a file.")
    tmp_p = _new_temp_file(final)
    try:
        yield tmp_p
        if overwrite:
            os.replace(tmp_p, final)
        else:
            # link() fails if final appeared meanwhile: no silent overwrite even under a race.
            try:
                os.link(tmp_p, final)
            except OSError as e:
                if isinstance(e, FileExistsError):
                    raise DirectorError(f"'{final.name}' already exists; Director never writes over a file.") from e
                os.replace(tmp_p, final)  # filesystems without hard links
            else:
                tmp_p.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_p.unlink()
        raise


def _new_temp_file(final: Path) -> Path:
    """An empty, exclusive temp file beside ``final``; mode 0666 less the umask, like any new file
    (mkstemp's 0600 would hide renders from the rest of a studio on shared storage)."""
    for _ in range(100):
        cand = final.parent / f".{final.stem}.{secrets.token_hex(4)}.part{final.suffix}"
        try:
            os.close(os.open(cand, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return cand
        except FileExistsError:
            continue
    raise DirectorError(f"No free temporary name beside '{final.name}'.")


def describe_os_error(e: OSError, what: str) -> str:
    """Human text for disk-full / permission problems, naming what was being written."""
    import errno

    if e.errno == errno.ENOSPC:
        return f"{what}: the disk is full; frames written so far are kept whole."
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{what}: permission denied ({shown_path(e.filename) if e.filename else ''})."
    return f"{what}: {e.strerror or e}"


# ---------------------------------------------------------------------------------------------
# paths as users see them

_named_roots: Callable[[], Mapping[str, str | os.PathLike]] | None = None


def set_named_roots(provider: Callable[[], Mapping[str, str | os.PathLike]] | None) -> None:
    """Tell :func:`shown_path` which folders it may name ({"output": ..., "input": ...}); the
    ComfyUI glue registers ComfyUI's input, output, temp and user folders."""
    global _named_roots
    _named_roots = provider


def shown_path(path: str | os.PathLike | None) -> str:
    """``path`` as an error or status line shows it, never revealing the server's layout:
    relative to the innermost named folder that holds it ("output/director/shot_00001.mp4"),
    else the bare file name. With no folders registered (the command line, tests) a path inside
    the working folder is shown relative to it."""
    if path is None:
        return ""
    p = Path(path)
    try:
        real = p.resolve()
    except (OSError, RuntimeError):
        real = p
    named = []
    if _named_roots is not None:
        try:
            named = [(name, Path(root).resolve()) for name, root in _named_roots().items() if root]
        except Exception:  # a half-started ComfyUI: fall back to the name
            named = []
    else:
        cwd = Path.cwd().resolve()
        if len(cwd.parts) > 1:
            named.append((".", cwd))
    best = None
    for name, root in named:
        if real == root or root in real.parents:
            if best is None or len(root.parts) > len(best[1].parts):
                best = (name, root)
    if best is None:
        return p.name
    rel = real.relative_to(best[1]).as_posix()
    if best[0] == ".":
        return rel
    return best[0] if rel == "." else f"{best[0]}/{rel}"


def shown_error(e: BaseException) -> str:
    """An exception's text for a user-facing message without the server path it may carry
    (OSError and FFmpeg errors put the full file name in ``str(e)``)."""
    strerror, filename = getattr(e, "strerror", None), getattr(e, "filename", None)
    if strerror:
        return f"{strerror} ({shown_path(filename)})" if filename else str(strerror)
    return str(e) or type(e).__name__
