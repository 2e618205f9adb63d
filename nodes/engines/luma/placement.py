"""Where a Luma job's files land: downloads moved, reused files hard-linked, EXR deliveries
unpacked, always under a free name (nothing already written is ever replaced). Where hard links
are impossible (exFAT, some NAS mounts) a download is moved by rename and a reused file copied:
a paid result is always delivered."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ...common.paths import claim_first_free, numbered_names, shown_path
from . import media


def safe_suffix(kind: str) -> str:
    s = "".join(c for c in (kind or "").split("/")[-1].lower() if c.isalnum())[:8]
    return s or "bin"


def place(tmp: Path, folder: Path, stem: str, suffix: str) -> Path:
    """Move a finished download to ``stem.suffix`` (or ``stem_2.suffix``...), never over a file."""
    final = claim_first_free(numbered_names(folder, stem, suffix), lambda p: _link_or_move(tmp, p),
                             f"'{stem}{suffix}' in {shown_path(folder)}")
    tmp.unlink(missing_ok=True)
    return final


def _link_or_move(src: Path, dst: Path) -> None:
    """A hard link; without links, claim the name (O_EXCL) and rename ``src`` onto the claimed name."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:
        _claim(dst)
        os.replace(src, dst)


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link; without links, a copy into a freshly claimed name (removed again if it fails)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:
        _claim(dst)
        try:
            shutil.copyfile(src, dst)
        except BaseException:
            dst.unlink(missing_ok=True)
            raise


def _claim(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644))


def link_files(files: dict[str, Any], folder: Path, stem: str) -> dict[str, Any] | None:
    """Hard links (copies where links are impossible) of a reused job's files in this run's folder, no
    network, so every run's folder holds its result; None (use the files where they are) when even
    that fails."""
    if Path(files["video"]).parent == folder:
        return None
    made: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        video = place_link(Path(files["video"]), folder, stem, ".mp4")
        made.append(video)
        extra = []
        for i, src in enumerate(files.get("extra", ())):
            extra.append(str(place_link(Path(src), folder, f"{stem}_output{i + 1}", Path(src).suffix)))
            made.append(Path(extra[-1]))
        exr = None
        if files.get("exr_frames"):
            exr = claim_dir(folder, "exr")
            made.append(exr)
            for f in sorted(Path(files["exr_frames"]).iterdir()):
                if f.suffix.lower() == ".exr":
                    _link_or_copy(f, exr / f.name)
        return {**files, "video": str(video), "exr_frames": str(exr) if exr else None, "extra": extra}
    except OSError:
        for p in reversed(made):
            if p.is_dir():
                for f in p.iterdir():
                    f.unlink()
                p.rmdir()
            else:
                p.unlink(missing_ok=True)
        return None


def place_link(src: Path, folder: Path, stem: str, suffix: str) -> Path:
    """A hard link (or a copy) of ``src`` named ``stem.suffix`` (or ``stem_2.suffix``...) in ``folder``;
    it fails rather than replace an existing name, so nothing is ever written over."""
    return claim_first_free(numbered_names(folder, stem, suffix), lambda p: _link_or_copy(src, p),
                            f"'{stem}{suffix}' in {shown_path(folder)}")


def claim_dir(folder: Path, name: str) -> Path:
    return claim_first_free(numbered_names(folder, name), Path.mkdir, f"folder '{name}' in {shown_path(folder)}")


def unpack_exr(path: Path, kind: str, folder: Path, first: int, max_bytes: int | None = None) -> int:
    """EXR delivery -> frames in ``folder``: a zip of frames, a multi-part file, or one frame. Generated
    names continue the sequence at ``first`` (the frames of earlier deliveries of the same job).
    ``max_bytes`` bounds what unpacking writes (media.TooLarge past it)."""
    if kind == "zip":
        return len(media.extract_exr_zip(path, folder, max_bytes))
    if media.exr_part_count(path) > 1:
        return len(media.split_multipart_exr(path, folder, first=first, max_bytes=max_bytes))
    place(path, folder, f"frame_{first:04d}", ".exr")
    return 1
