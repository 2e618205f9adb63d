"""Put the source's audio under an engine's silent result, untouched (no ComfyUI import).

Luma's Ray3.2 returns silent MP4s; Modify Video promises the source audio kept. The result's
video packets are copied as they are (no re-encode) into a new MP4 beside it, and the source's
audio under the selection is added the way Save Video does it (``footage.encode``): packets
copied when MP4 takes the codec (AAC, MP3, ALAC, Opus), else AAC 256 kb/s; sample-exact window.
"""

from __future__ import annotations

from pathlib import Path

from ..common.errors import DirectorError
from ..common.paths import atomic_path
from ..footage.stream import FootageRef, audio_window


def has_audio(path: Path) -> bool:
    import av

    with av.open(str(path)) as c:
        return any(s.codec_context is not None for s in c.streams.audio)


def with_source_audio(video: Path, footage: FootageRef, out: Path) -> Path:
    """``out``: ``video``'s picture (packets copied) with ``footage``'s audio; ``video`` itself when
    the source is silent. ``out`` must not exist (written atomically)."""
    import av

    from ..footage.encode import _Audio

    window = audio_window(footage)
    if window is None:
        return Path(video)
    with atomic_path(Path(out)) as tmp:
        try:
            with av.open(str(video)) as vin, \
                    av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as vout:
                for k, v in vin.metadata.items():
                    vout.metadata[k] = v
                vin_s = vin.streams.video[0]
                vout_s = vout.add_stream_from_template(vin_s)
                audio = _Audio(vout, footage.path, window)
                try:
                    for pkt in vin.demux(vin_s):
                        if pkt.dts is None:
                            continue
                        t = float(pkt.pts * vin_s.time_base) if pkt.pts is not None else 0.0
                        audio.mux_until(vout, t)
                        pkt.stream = vout_s
                        vout.mux(pkt)
                    audio.mux_until(vout, float("inf"))
                finally:
                    audio.close()
        except av.FFmpegError as e:
            raise DirectorError(f"video: adding the source audio to '{Path(video).name}' failed ({e}).",
                                field="video") from None
    return Path(out)
