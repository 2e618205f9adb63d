"""Source videos for Luma's video tasks (video_reframe, video_edit): prepared once, uploaded once.

Preparation (:func:`prepare_source`), losslessly where the source allows it:

* **Remux** (no re-encode, bit-exact pictures): the selection is the whole clip (start 0, every
  frame, no stride, no downscale), the file is MP4/MOV and its video is H.264 or HEVC. The video
  stream is copied packet for packet into a fresh .mp4 (``+faststart``); audio is left out
  (Luma's output is silent; Director puts the source's own audio back on the result).
* **Encode** otherwise (a frame range, a stride, a max size, other codecs, EXR-backed refs):
  H.264 High, 8-bit 4:2:0, ``crf 12`` (``preset fast``): visually lossless, BT.709 tags, at the
  selection's frame rate. Deeper sources are reduced to 8 bits (what the API's H.264 path takes).

Upload: the prepared .mp4 goes through the Files API (``LumaTransport.upload_file``) and the
``{"file_id": ...}`` reference is kept in a small SQLite table (:class:`SourceUploads`, beside the
job ledger) keyed by account, endpoint and a SOURCE KEY: sha256 of the file's bytes, the selection
and the preparation version. The same clip with the same selection is uploaded once per
``REUSE_S`` (24 h), however many jobs use it; concurrent jobs of one graph share one upload.
A prepared file over ``SOURCE_MAX_BYTES`` is refused before upload, naming size and limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from ...common.errors import EngineUnsupported
from ...common.progress import CancelFn, never_cancelled
from ...footage.stream import FootageRef, probe, ref_info

PREP_VERSION = 1
SOURCE_MAX_BYTES = 100 * 1024 * 1024
"""Largest source video Director uploads (third parties cite 100 MB for Luma's video sources)."""
REUSE_S = 24 * 3600.0
SOURCES_FILE = Path("director") / "luma_sources.sqlite3"
REMUX_CODECS = ("h264", "hevc")
ENCODE_CRF = "12"
MIME = "video/mp4"


@dataclass(frozen=True)
class PreparedSource:
    """A source video ready to upload: ``how`` is "remux" or "encode"."""

    path: Path
    key: str
    how: str
    codec: str
    size: int


def file_digest(path: str | Path, *, block: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def source_key(ref: FootageRef) -> str:
    """What identifies an upload: the file's content, the selection, the preparation version."""
    from .shot_key import footage_digest

    content = footage_digest(ref)  # the pictures' bytes (an EXR folder's frames), never a path
    return hashlib.sha256(f"{PREP_VERSION}|{content}|{ref.selection!r}".encode()).hexdigest()


def can_remux(ref: FootageRef) -> bool:
    """True when the selection is the whole clip in an MP4/MOV with H.264/HEVC video."""
    if ref.exr_frames or Path(ref.path).suffix.lower() not in (".mp4", ".mov", ".m4v"):
        return False
    info = probe(ref.path)
    sel = ref.selection
    whole = sel.start == 0 and sel.stride == 1 and (sel.count == 0 or sel.count >= info.frame_count)
    full_size = sel.max_size == 0 or sel.max_size >= max(info.width, info.height)
    return whole and full_size and info.codec in REMUX_CODECS and not info.variable_frame_rate


def prepare_source(ref: FootageRef, folder: Path, *, key: str | None = None) -> PreparedSource:
    """Write the upload file for ``ref`` into ``folder`` (module docstring: remux or encode)."""
    key = key or source_key(ref)
    out = Path(folder) / f"source_{key[:16]}.mp4"
    if can_remux(ref):
        codec = _remux(ref.path, out)
        how = "remux"
    else:
        codec = _encode(ref, out)
        how = "encode"
    return PreparedSource(out, key, how, codec, out.stat().st_size)


def _remux(src: str, out: Path) -> str:
    import av

    with av.open(str(src), "r") as inp, av.open(str(out), "w", format="mp4",
                                                 options={"movflags": "+faststart"}) as dst:
        vin = inp.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for pkt in inp.demux(vin):
            if pkt.dts is None:
                continue
            pkt.stream = vout
            dst.mux(pkt)
        return vin.codec_context.name


def _encode(ref: FootageRef, out: Path) -> str:
    import av

    from ...footage.stream import iter_chunks

    info = ref_info(ref)
    fps = Fraction(info.fps)
    with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
        vs = dst.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = info.width - info.width % 2, info.height - info.height % 2, "yuv420p"
        cc = vs.codec_context
        cc.time_base = 1 / fps
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = 1, 1, 1, 1
        cc.options = {"crf": ENCODE_CRF, "preset": "fast", "profile": "high"}
        n = 0
        for chunk in iter_chunks(ref, 8):
            if chunk.dtype == np.uint16:
                chunk = (chunk >> 8).astype(np.uint8)
            elif chunk.dtype != np.uint8:
                chunk = (np.clip(chunk, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
            for img in chunk:
                img = np.ascontiguousarray(img[:vs.height, :vs.width])
                frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(
                    format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
                frame.pts = n
                n += 1
                for pkt in vs.encode(frame):
                    dst.mux(pkt)
        for pkt in vs.encode(None):
            dst.mux(pkt)
    return "h264"


class SourceUploads:
    """The small table of uploaded sources: (account, base_url, source key) -> file id, with a time."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().execute(
            "CREATE TABLE IF NOT EXISTS sources (account TEXT NOT NULL, base_url TEXT NOT NULL, "
            "source_key TEXT NOT NULL, file_id TEXT NOT NULL, how TEXT, size INTEGER, uploaded_at REAL NOT NULL, "
            "PRIMARY KEY (account, base_url, source_key))")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA busy_timeout=30000")
        return db

    def find(self, account: str, base_url: str, key: str, *, max_age_s: float = REUSE_S) -> str | None:
        row = self._db().execute(
            "SELECT file_id, uploaded_at FROM sources WHERE account=? AND base_url=? AND source_key=?",
            (account, base_url, key)).fetchone()
        if row is None or time.time() - row[1] > max_age_s:
            return None
        return row[0]

    def remember(self, account: str, base_url: str, key: str, file_id: str, *, how: str, size: int) -> None:
        self._db().execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (account, base_url, key, file_id, how, int(size), time.time()))

    def forget(self, account: str, base_url: str, key: str) -> None:
        self._db().execute("DELETE FROM sources WHERE account=? AND base_url=? AND source_key=?",
                           (account, base_url, key))

    def count(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM sources").fetchone()[0])


_inflight_lock = threading.Lock()
_inflight: dict[tuple, "asyncio.Future[str]"] = {}


async def upload_source(transport, ref: FootageRef, uploads: SourceUploads, *, account: str, base_url: str,
                        work_dir: Path | None = None, cancelled: CancelFn = never_cancelled,
                        status: Callable[[str], None] = lambda text: None) -> dict[str, str]:
    """The ``{"file_id": ...}`` of ``ref``'s source video at Luma: from the table, from an upload of
    the same source already under way in this event loop, or prepared and uploaded now."""
    key = await asyncio.to_thread(source_key, ref)
    found = uploads.find(account, base_url, key)
    if found:
        status("source video already at Luma (uploaded earlier; not sent again)")
        return {"file_id": found}
    loop = asyncio.get_running_loop()
    slot = (id(loop), account, base_url, key)
    with _inflight_lock:
        pending = _inflight.get(slot)
        if pending is None or pending.done() and pending.exception() is not None:
            pending = None
            mine = _inflight[slot] = loop.create_future()
    if pending is not None:
        status("waiting for the same source video's upload")
        return {"file_id": await asyncio.shield(pending)}
    try:
        file_id, prepared = await _prepare_and_upload(transport, ref, key, work_dir, cancelled, status)
        uploads.remember(account, base_url, key, file_id, how=f"{prepared.how} {prepared.codec}", size=prepared.size)
        mine.set_result(file_id)
        return {"file_id": file_id}
    except BaseException as e:
        mine.set_exception(e if isinstance(e, Exception) else RuntimeError("upload interrupted"))
        mine.exception()  # retrieved: nobody may be waiting
        raise
    finally:
        with _inflight_lock:
            if _inflight.get(slot) is mine:
                del _inflight[slot]


async def _prepare_and_upload(transport, ref: FootageRef, key: str, work_dir, cancelled,
                              status) -> tuple[str, PreparedSource]:
    with tempfile.TemporaryDirectory(prefix="director-luma-source-", dir=work_dir) as tmp:
        status("preparing the source video for upload")
        prepared = await asyncio.to_thread(prepare_source, ref, Path(tmp), key=key)
        if prepared.size > SOURCE_MAX_BYTES:
            raise EngineUnsupported(
                f"Luma engine: the source video is {prepared.size / 2**20:.0f} MB prepared for upload "
                f"({prepared.how}, {prepared.codec}); Luma takes at most {SOURCE_MAX_BYTES // 2**20} MB. Use a "
                "shorter selection or a smaller max size; nothing was uploaded or sent.", field="video")
        status(f"uploading the source video ({prepared.size / 2**20:.1f} MB, {prepared.how} {prepared.codec})")
        return await transport.upload_file(prepared.path, MIME, cancelled=cancelled), prepared
