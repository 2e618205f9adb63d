"""Where a Luma job's files land: downloads moved, reused files hard-linked, EXR deliveries
unpacked, always under a free name (nothing already written is ever replaced)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...common.paths import claim_first_free, numbered_names
from . import media


def safe_suffix(kind: str) -> str:
    s = "".join(c for c in (kind or "").split("/")[-1].lower() if c.isalnum())[:8]
    return s or "bin"


def place(tmp: Path, folder: Path, stem: str, suffix: str) -> Path:
    """Move a finished download to ``stem.suffix`` (or ``stem_2.suffix``...), never over a file."""
    final = place_link(tmp, folder, stem, suffix)
    tmp.unlink()
    return final


def link_files(files: dict[str, Any], folder: Path, stem: str) -> dict[str, Any] | None:
    """Hard links of a reused job's files in this run's folder (no copy, no network), so every run's
    folder holds its result; None (use the files where they are) when links are impossible."""
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
                    os.link(f, exr / f.name)
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
    """A hard link to ``src`` named ``stem.suffix`` (or ``stem_2.suffix``...) in ``folder``; the
    link fails rather than replace an existing name, so nothing is ever written over."""
    return claim_first_free(numbered_names(folder, stem, suffix), lambda p: os.link(src, p),
                            f"'{stem}{suffix}' in {folder}")


def claim_dir(folder: Path, name: str) -> Path:
    return claim_first_free(numbered_names(folder, name), Path.mkdir, f"folder '{name}' in {folder}")


def unpack_exr(path: Path, kind: str, folder: Path, first: int) -> int:
    """EXR delivery -> frames in ``folder``: a zip of frames, a multi-part file, or one frame. Generated
    names continue the sequence at ``first`` (the frames of earlier deliveries of the same job)."""
    if kind == "zip":
        return len(media.extract_exr_zip(path, folder))
    if media.exr_part_count(path) > 1:
        return len(media.split_multipart_exr(path, folder, first=first))
    place(path, folder, f"frame_{first:04d}", ".exr")
    return 1
