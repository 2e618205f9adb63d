"""The Luma engine bringing a paid result home, with bounds.

Every output of a finished job is streamed into the shot's folder (transport.download): https only
(plain http only on loopback, for the emulator), redirects followed by hand and never to another
loopback host, never with the key; at most ``download_cap`` bytes (frames x pixels x a generous
factor: 3 bytes a pixel for an MP4, 6 for HDR, 16 for EXR, plus 16 MiB), a stall limit (the
engine's network timeout between two reads) and an overall deadline per file. A file must decode
(the MP4's every frame, the EXR headers, the zip's checksums) before the job is marked
'downloaded'; one that does not is fetched again through a freshly signed link, and the job stays
'completed' (paid, kept, downloadable again within the link's life) when it never does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ...common.paths import ensure_writable_dir, shown_path
from ...shot.request import FPS, output_size
from . import media
from .flow import _Run
from .ledger import Job
from .placement import claim_dir, place, safe_suffix, unpack_exr
from .transport import LumaError, LumaLinkRefused, LumaTooLarge, LumaUnavailable, sleep_or_cancel, until_cancelled

DOWNLOAD_TRIES = 3  # one output: the link from the job, then twice with freshly signed links
DOWNLOAD_DEADLINE_S = 1800.0  # one file, start to end
VIDEO_BYTES_PER_PIXEL = 3  # an 8-bit RGB frame uncompressed: no MP4 of the shot is bigger
EXR_BYTES_PER_PIXEL = 16  # float32 RGBA uncompressed
CAP_SLACK = 16 << 20


def shot_frames(req) -> int:
    """Frames the shot's result has at most: the source's for video tasks, the clip's otherwise."""
    if req.task != "generate" and req.source is not None:
        return max(1, int(req.source.frame_count))
    return int(req.duration) * FPS + 1


def download_cap(req, kind: str) -> int:
    """The most bytes one output of this shot may have (``kind`` "exr" or anything else: video)."""
    w, h = output_size(req.resolution, req.aspect_ratio)
    per = EXR_BYTES_PER_PIXEL if kind == "exr" else VIDEO_BYTES_PER_PIXEL * (2 if req.hdr else 1)
    return shot_frames(req) * w * h * per + CAP_SLACK


def check_decodes(path: Path, cap: int) -> None:
    """Raise LumaUnavailable (fetch again) when ``path`` is not a whole, readable result file."""
    kind = media.sniff(path)
    try:
        if kind == "mp4":
            media.check_mp4(path)
        elif kind == "exr":
            media.exr_part_count(path)
        elif kind == "zip":
            media.check_zip(path, cap)
    except media.TooLarge as e:
        raise LumaTooLarge(str(e)) from None
    except Exception as e:  # noqa: BLE001 - any decoder error means the same: not this file
        raise LumaUnavailable(f"the downloaded {kind} file does not decode ({type(e).__name__}: "
                              f"{str(e)[:120].replace(str(path), path.name)})") from None


class Downloading:
    """Downloads of LumaEngine (a mixin)."""

    async def _download_all(self, run: _Run, job: Job, outputs: list[dict[str, str]]) -> dict[str, Any]:
        """Download every output item into the target folder, branching on what each file is."""
        folder = ensure_writable_dir(Path(run.target.folder), field="output folder")
        stem = run.target.stem
        video: Path | None = None
        exr_dir: Path | None = None
        exr_count = 0
        extra: list[str] = []
        for i, item in enumerate(outputs):
            tmp = folder / f".{stem}.luma{i}.download"
            cap = download_cap(run.req, "exr" if item.get("type") == "exr" else "video")
            try:
                run.hooks.status(f"downloading Luma output {i + 1}/{len(outputs)} ({item['type']})")
                await self._fetch(run, job, i, item["url"], tmp, cap)
                kind = media.sniff(tmp)
                if kind == "mp4" and video is None:
                    video = place(tmp, folder, stem, ".mp4")
                elif kind in ("exr", "zip"):
                    exr_dir = exr_dir or claim_dir(folder, "exr")
                    frames = await asyncio.to_thread(unpack_exr, tmp, kind, exr_dir, exr_count, cap)
                    exr_count += frames
                else:
                    suffix = ".mp4" if kind == "mp4" else f".{safe_suffix(item['type'])}"
                    extra.append(str(place(tmp, folder, f"{stem}_output{i + 1}", suffix)))
            except media.TooLarge as e:
                raise LumaError(f"Luma engine: job {job.generation_id} is finished and paid, but {e} The job is "
                                "kept in Director's ledger: queue the graph again to try again (no new job).") from None
            except OSError as e:
                raise LumaError(f"Luma engine: job {job.generation_id} is finished and paid, but its result could "
                                f"not be written to {shown_path(folder)} ({e.strerror or type(e).__name__}). Fix "
                                "that, then queue the graph again to download it (no new job).") from None
            finally:
                tmp.unlink(missing_ok=True)
        if video is None:
            kinds = ", ".join(o["type"] for o in outputs)
            raise LumaError(f"Luma engine: job {job.generation_id} returned no MP4 ({kinds}); the files that came "
                            f"back are in {shown_path(folder)}.")
        return {"video": str(video), "exr_frames": str(exr_dir) if exr_dir else None, "exr_count": exr_count,
                "extra": extra}

    async def _fetch(self, run: _Run, job: Job, index: int, url: str, dest: Path, cap: int) -> None:
        """Download output ``index`` of a finished job into ``dest`` and check it decodes. A refused link,
        a failed download or a file that does not decode asks Luma for the job again (freshly signed
        links) and retries; the job exists and is paid, so this never leads to a new job. Only Luma
        saying it no longer knows the job (LumaNotFound from get_generation) does, in render()."""
        gid, cancelled = job.generation_id, run.hooks.cancelled
        error: Exception | None = None
        for attempt in range(DOWNLOAD_TRIES):
            try:
                if attempt:
                    await sleep_or_cancel(self.retry_base_s * 2 ** (attempt - 1), cancelled)
                    url = await self._fresh_link(run, gid, index)
                await until_cancelled(run.transport.download(url, dest, cancelled=cancelled, max_bytes=cap,
                                                             deadline_s=DOWNLOAD_DEADLINE_S, tries=2), cancelled)
                await asyncio.to_thread(check_decodes, dest, cap)
                return
            except LumaTooLarge as e:
                raise LumaError(f"Luma engine: job {gid} is finished and paid, but {e}. The job is kept in "
                                "Director's ledger: queue the graph again to try the download again (no new job); if "
                                "it keeps happening, report the job id to Luma support.") from None
            except (LumaLinkRefused, LumaUnavailable) as e:
                error = e
                if attempt + 1 < DOWNLOAD_TRIES:
                    run.hooks.status(f"Luma output {index + 1} of job {gid} did not download ({e}); asking Luma "
                                     f"for a fresh link ({attempt + 1}/{DOWNLOAD_TRIES - 1})")
        raise LumaError(f"Luma engine: job {gid} is finished and paid, but its result could not be downloaded "
                        f"({str(error).rstrip('.')}). The job is kept in Director's ledger: queue the graph again "
                        "within the hour (while Luma's links live) to download it; it will not be paid again.")

    async def _fresh_link(self, run: _Run, gid: str, index: int) -> str:
        """Output ``index``'s link as Luma signs it now (raises LumaNotFound if the job is gone)."""
        gen = await until_cancelled(run.transport.get_generation(gid), run.hooks.cancelled)
        outputs = gen.output or []
        if gen.state != "completed" or index >= len(outputs):
            raise LumaUnavailable(f"Luma lists no output {index + 1} for the job ({gen.state})")
        return outputs[index].url
