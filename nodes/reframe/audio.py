"""The source's audio put back on a reframed picture (Luma's outputs are silent).

:func:`with_source_audio` copies the result's video packets untouched and the source's audio under
the selection (``footage.stream.audio_window``) packet for packet when the container takes the
codec (AAC into .mp4), transcoding only where it must: the same audio path as Save Video.
The new file appears atomically; the picture file is left as it was.
"""

from __future__ import annotations

from pathlib import Path

from ..common.errors import DirectorError
from ..common.paths import atomic_path
from ..footage.stream import FootageRef, audio_window


def with_source_audio(picture: Path, source: FootageRef, out: Path) -> str | None:
    """Write ``out``: ``picture``'s video stream plus ``source``'s audio. Returns the audio label
    (e.g. "aac (copied)"), or None (nothing written) when the source is silent."""
    import av

    from ..footage.encode import _Audio  # the encoder's audio path: copy, or AAC where the codec cannot go

    window = audio_window(source)
    if window is None:
        return None
    with atomic_path(Path(out)) as tmp:
        with av.open(str(picture), "r") as inp, av.open(str(tmp), "w", format="mp4",
                                                        options={"movflags": "+faststart"}) as dst:
            vin = inp.streams.video[0]
            vout = dst.add_stream_from_template(vin)
            audio = _Audio(dst, source.path, window)
            try:
                tb = vin.time_base
                for pkt in inp.demux(vin):
                    if pkt.dts is None:
                        continue
                    t = float(pkt.pts * tb) if pkt.pts is not None else 0.0
                    audio.mux_until(dst, t)
                    pkt.stream = vout
                    dst.mux(pkt)
                audio.mux_until(dst, float("inf"))
                label = audio.label
            finally:
                audio.close()
    if not Path(out).exists():
        raise DirectorError(f"audio: '{Path(out).name}' was not written.", field="video")
    return label
