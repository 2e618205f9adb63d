"""Local media for the Luma engine: lossless keyframe PNGs going up, result files coming down.

Keyframe images are written as PNG at their own size (never downscaled): 16 bits per channel
when the source is float or uint16 (ComfyUI images are float32 0..1), 8 bits when it is uint8.
Values outside 0..1 (HDR sources) are clipped, since PNG holds display-referred 0..1 only; the
alpha channel, if any, is dropped (a video frame is opaque).

Downloads are identified by their bytes, not by the name Luma gives them: MP4 (``ftyp`` box),
OpenEXR (magic ``76 2f 31 01``) or ZIP (a package of EXR frames).
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np

from ...common.errors import DirectorError
from ...common.paths import atomic_path

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_ROWS_PER_BLOCK = 64
EXR_MAGIC = b"\x76\x2f\x31\x01"
CHUNK_COPY = 1 << 20


def _chunk(fh: BinaryIO, kind: bytes, data: bytes) -> None:
    fh.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_samples(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) samples as stored in the PNG: uint8, or big-endian uint16 for float/uint16 sources."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise DirectorError(f"keyframe image must be (H, W, 3) or (H, W, 4), got {arr.shape}.", field="keyframes")
    rgb = arr[..., :3]
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb)
    if rgb.dtype == np.uint16:
        return np.ascontiguousarray(rgb, dtype=">u2")
    f = np.nan_to_num(np.asarray(rgb, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.ascontiguousarray(np.floor(np.clip(f, 0.0, 1.0) * 65535.0 + 0.5), dtype=">u2")


def write_png(image: np.ndarray, fh: BinaryIO) -> None:
    """Write ``image`` as an RGB PNG to ``fh`` in blocks of rows (PNG "Up" filter, zlib level 6)."""
    samples = png_samples(image)
    h, w = samples.shape[:2]
    depth = 8 if samples.dtype == np.uint8 else 16
    fh.write(_PNG_SIG)
    _chunk(fh, b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 2, 0, 0, 0))
    comp = zlib.compressobj(6)
    row_bytes = samples.reshape(h, -1).view(np.uint8)
    prev = np.zeros(row_bytes.shape[1], dtype=np.uint8)
    for start in range(0, h, _ROWS_PER_BLOCK):
        rows = row_bytes[start:start + _ROWS_PER_BLOCK]
        above = np.concatenate([prev[None, :], rows[:-1]], axis=0)
        filtered = rows - above  # uint8 arithmetic wraps, which is PNG's modulo-256 "Up" filter
        block = np.concatenate([np.full((len(rows), 1), 2, dtype=np.uint8), filtered], axis=1)
        data = comp.compress(block.tobytes())
        if data:
            _chunk(fh, b"IDAT", data)
        prev = rows[-1]
    _chunk(fh, b"IDAT", comp.flush())
    _chunk(fh, b"IEND", b"")


def sniff(path: Path) -> str:
    """"mp4", "exr", "zip" or "unknown", from the first bytes of the file."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == EXR_MAGIC:
        return "exr"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    return "unknown"


class TooLarge(DirectorError):
    """An EXR delivery that would unpack to more than the shot's byte cap."""


def _over(what: str, max_bytes: int) -> TooLarge:
    return TooLarge(f"Luma's EXR delivery {what} more than this shot's cap of {max_bytes / 2**20:.0f} MiB "
                    "(frames x pixels x a generous factor); it was not unpacked.")


def extract_exr_zip(zip_path: Path, folder: Path, max_bytes: int | None = None) -> list[Path]:
    """Unpack the ``.exr`` members of a ZIP into ``folder`` (streamed, flat, names sanitised).

    Only base names are used, so a member called ``../../x.exr`` lands in ``folder`` as ``x.exr``;
    a name that repeats is an error rather than an overwrite. ``max_bytes`` bounds what is unpacked
    (declared sizes first, then the bytes actually inflated: a zip bomb stops at the cap).
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    total = 0
    with zipfile.ZipFile(zip_path) as zf:
        members = [m for m in zf.infolist() if not m.is_dir() and m.filename.lower().endswith(".exr")]
        if max_bytes is not None and sum(m.file_size for m in members) > max_bytes:
            raise _over("declares", max_bytes)
        for m in sorted(members, key=lambda m: m.filename):
            name = PurePosixPath(m.filename.replace("\\", "/")).name
            if not name or name.startswith("."):
                continue
            dest = folder / name
            if dest.exists():
                raise DirectorError(f"Luma EXR package: two frames are both named '{name}'.")
            with atomic_path(dest) as tmp, zf.open(m) as src, open(tmp, "wb") as dst:
                while piece := src.read(1 << 20):
                    total += len(piece)
                    if max_bytes is not None and total > max_bytes:
                        raise _over("unpacks to", max_bytes)
                    dst.write(piece)
            written.append(dest)
    if not written:
        raise DirectorError("Luma's EXR package holds no .exr frames.")
    return written


def _cstr(fh: BinaryIO) -> bytes:
    out = bytearray()
    while True:
        b = fh.read(1)
        if not b:
            raise DirectorError("Luma's EXR file ends inside its header.")
        if b == b"\0":
            return bytes(out)
        out += b
        if len(out) > 255:
            raise DirectorError("Luma's EXR file has a malformed header.")


def _exr_header(fh: BinaryIO) -> list[tuple[bytes, bytes, bytes]]:
    attrs = []
    while True:
        name = _cstr(fh)
        if not name:
            return attrs
        kind = _cstr(fh)
        (size,) = struct.unpack("<i", fh.read(4))
        if not 0 <= size <= 1 << 24:
            raise DirectorError("Luma's EXR file has a malformed header.")
        attrs.append((name, kind, fh.read(size)))


def exr_part_count(path: Path) -> int:
    """Parts in an OpenEXR file (1 for a plain single-part file)."""
    with open(path, "rb") as fh:
        magic, version = fh.read(4), struct.unpack("<I", fh.read(4))[0]
        if magic != EXR_MAGIC:
            raise DirectorError(f"{path.name} is not an OpenEXR file.")
        if not version & 0x1000:
            return 1
        n = 0
        while fh.peek(1)[:1] not in (b"\0", b""):
            _exr_header(fh)
            n += 1
        return n


def split_multipart_exr(path: Path, folder: Path, *, first: int = 0, max_bytes: int | None = None) -> list[Path]:
    """Write each part of a multi-part scanline EXR as its own file ``frame_NNNN.exr`` in ``folder``,
    numbered from ``first`` (so several deliveries make one sequence).

    Works on the bytes (headers copied, chunks copied without their part number, offset tables
    rebuilt), one chunk at a time, so memory does not grow with the number of frames. ``max_bytes``
    bounds what is written (offset tables that point at the same chunks again cannot inflate it).
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    total = 0
    file_size = path.stat().st_size
    with open(path, "rb") as fh:
        if fh.read(4) != EXR_MAGIC:
            raise DirectorError(f"{path.name} is not an OpenEXR file.")
        (version,) = struct.unpack("<I", fh.read(4))
        if not version & 0x1000:
            raise DirectorError(f"{path.name} is a single-part EXR; nothing to split.")
        headers = []
        while fh.peek(1)[:1] not in (b"\0", b""):
            headers.append(_exr_header(fh))
        fh.read(1)
        counts = []
        for i, attrs in enumerate(headers):
            a = {n: v for n, _, v in attrs}
            if a.get(b"type", b"scanlineimage").rstrip(b"\0") != b"scanlineimage" or b"chunkCount" not in a:
                raise DirectorError(f"Luma's EXR part {i} is not a scanline image; Director cannot split it.")
            counts.append(struct.unpack("<i", a[b"chunkCount"])[0])
        tables = [struct.unpack(f"<{c}Q", fh.read(8 * c)) for c in counts]
        for i, (attrs, table) in enumerate(zip(headers, tables)):
            dest = folder / f"frame_{first + i:04d}.exr"
            with atomic_path(dest) as tmp, open(tmp, "wb") as out:
                out.write(EXR_MAGIC + struct.pack("<I", 2 | (version & 0x400)))
                for name, kind, value in attrs:
                    if name not in (b"name", b"chunkCount"):
                        out.write(name + b"\0" + kind + b"\0" + struct.pack("<i", len(value)) + value)
                out.write(b"\0")
                table_at = out.tell()
                out.write(b"\0" * (8 * len(table)))
                offsets = []
                for off in table:
                    fh.seek(off)
                    part, y, size = struct.unpack("<iii", fh.read(12))
                    if size < 0 or off + 12 + size > file_size:
                        raise DirectorError("Luma's EXR file is truncated or malformed (a chunk runs past its end).")
                    total += size + 8
                    if max_bytes is not None and total > max_bytes:
                        raise _over("splits into", max_bytes)
                    if part != i:
                        raise DirectorError(f"Luma's EXR file is inconsistent (chunk of part {part} in part {i}).")
                    offsets.append(out.tell())
                    out.write(struct.pack("<ii", y, size))
                    left = size
                    while left:
                        piece = fh.read(min(left, CHUNK_COPY))
                        if not piece:
                            raise DirectorError("Luma's EXR file is truncated.")
                        out.write(piece)
                        left -= len(piece)
                out.seek(table_at)
                out.write(struct.pack(f"<{len(offsets)}Q", *offsets))
            written.append(dest)
    return written


def check_mp4(path: Path) -> int:
    """Check the MP4 is whole and decodes; returns its frame count. Every packet of the video stream
    is read (a cut-off or scrambled container fails), as many as its own index promises, and the
    first frame and the last group of pictures are decoded (cheap next to decoding every frame)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise DirectorError(f"{path.name} has no video stream.")
        stream = container.streams.video[0]
        promised = int(stream.frames or 0)
        count, last_key = 0, None
        for packet in container.demux(stream):
            if packet.size:
                count += 1
                if packet.is_keyframe:
                    last_key = packet.pts
        if count == 0 or (promised and count < promised):
            raise DirectorError(f"{path.name} holds {count} of {promised or 'its'} frames.")
        container.seek(0, stream=stream)
        if next(container.decode(stream), None) is None:
            raise DirectorError(f"{path.name}: its first frame does not decode.")
        if last_key is not None:
            container.seek(last_key, stream=stream)
            if not any(True for _ in container.decode(stream)):
                raise DirectorError(f"{path.name}: its last frames do not decode.")
    return count


def check_zip(path: Path, max_bytes: int) -> None:
    """A zip whose members fit the cap (as declared) and whose checksums hold."""
    with zipfile.ZipFile(path) as zf:
        if sum(m.file_size for m in zf.infolist()) > max_bytes:
            raise _over("declares", max_bytes)
        bad = zf.testzip()
        if bad is not None:
            raise DirectorError(f"member {PurePosixPath(bad).name} of the EXR package is corrupt.")
