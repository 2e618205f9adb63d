"""The source's audio put back under a silent engine result (Luma's outputs have no audio).

No ComfyUI import. :func:`with_source_audio` copies the result's video packets untouched and the
source's audio under its selection (``sound.audio_window``) packet for packet when the container
takes the codec (AAC into .mp4), transcoding only where it must: the same audio path as Save
Video (``encode._Audio``). It writes a new file beside the result, ``<name>_audio.mp4`` (then
``_audio_2`` ...), atomically; the engine's delivery is left as it came.
"""

from __future__ import annotations

from pathlib import Path

from ..common.errors import DirectorError
from ..common.paths import atomic_path, claim_first_free, numbered_names
from .probe import probe
from .selection import FootageRef
from .sound import audio_window


def mux_source_audio(picture: Path, source: FootageRef, out: Path) -> str | None:
    """Write ``out``: ``picture``'s video stream plus ``source``'s audio. Returns the audio label
    (e.g. "aac (copied)"), or None (nothing written) when the source is silent."""
    import av

    from .encode import _Audio  # the encoder's audio path: copy, or AAC where the codec cannot go

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


def with_source_audio(video: Path, source: FootageRef) -> Path:
    """The clip to hand on for ``video``: itself when it has audio or the source is silent, else a
    new ``<stem>_audio.mp4`` beside it (the first free name) with the source's audio under it."""
    video = Path(video)
    if probe(video).has_audio or audio_window(source) is None:
        return video

    def write(name: Path) -> None:
        """Claim ``name`` by writing it: atomic_path links the finished file into place and
        refuses a name taken meanwhile, which claim_first_free takes as 'try the next name'."""
        if name.exists():
            raise FileExistsError(name)
        try:
            mux_source_audio(video, source, name)
        except DirectorError as e:
            if isinstance(e.__cause__, FileExistsError):
                raise FileExistsError(name) from e
            raise

    return claim_first_free(numbered_names(video.parent, f"{video.stem}_audio", ".mp4"), write,
                            f"the audio copy of '{video.name}'")
