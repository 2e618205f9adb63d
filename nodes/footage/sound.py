"""The source's sound under a selection: which seconds, decoded to float samples.

Save Video copies audio packets itself (``encode._Audio``); this module gives the window
(:func:`audio_window`) and decodes it (:func:`iter_audio`, :func:`read_audio`) for Load Video's
audio output and transcodes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import DirectorError
from ..common.paths import shown_error, shown_path
from .probe import probe_facts
from .selection import FootageRef, source_info


def audio_window(ref: FootageRef) -> tuple[float, float] | None:
    """Seconds (container clock) of source audio under the selection, or None when silent.

    The window runs from the first selected frame to the end of the last selected frame's
    source interval; stride keeps the whole span, so sound stays in sync with the picture.
    """
    if not ref.path or not Path(ref.path).is_file():
        return None
    src, facts = probe_facts(ref.path)
    if not src.has_audio:
        return None
    total = source_info(ref).frame_count
    nums = ref.selection.frame_numbers(total, f"'{Path(ref.path).name}'")
    if not nums:
        return None
    # audio and video share the container clock: frame 0 is shown at the video's first timestamp
    v0 = float(facts.first_pts * facts.time_base) if facts.first_pts is not None and facts.time_base else 0.0
    return v0 + float(nums.start / src.fps), v0 + float(min(nums[-1] + nums.step, total) / src.fps)


def standard_layout(layout) -> str:
    """A channel layout name encoders accept ("2 channels" from WMA/PCM becomes "stereo")."""
    n = layout.nb_channels if layout is not None else 2
    return {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(n, layout.name if layout is not None else "stereo")


def _audio_stream(container, path: str):
    a = next((s for s in container.streams.audio if s.codec_context is not None), None)
    if a is None:
        raise DirectorError(f"video: '{shown_path(path)}' has no audio FFmpeg can decode.", field="video")
    return a


def iter_audio(path: str, start: float, end: float):
    """Decode the first audio stream of ``path`` between ``start`` and ``end`` seconds.

    Returns ``(sample_rate, layout_name, chunks)`` where ``chunks`` yields float32 planar
    ``(channels, samples)`` arrays covering the window, cut to the sample. The file is opened
    by ``chunks`` itself, so one never iterated holds nothing open.
    """
    import av

    with av.open(path, "r") as container:
        a = _audio_stream(container, path)
        rate = int(a.codec_context.sample_rate or a.sample_rate)
        layout = standard_layout(a.codec_context.layout)

    def chunks():
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        s0, s1 = int(round(start * rate)), int(round(end * rate))
        pos, emitted = None, s0
        slack = rate // 500  # 2 ms
        try:
            with av.open(path, "r") as container:
                a = _audio_stream(container, path)
                if start > 1.0:
                    container.seek(int(max(0.0, start - 0.5) / a.time_base), stream=a, backward=True)
                for frame in container.decode(a):
                    for rf in resampler.resample(frame):
                        stamped = int(round(float(rf.pts * rf.time_base) * rate)) if rf.pts is not None else None
                        if pos is None:
                            pos = stamped or 0
                        elif stamped is not None and abs(stamped - pos) > slack:
                            pos = stamped  # a real gap or overlap, not timestamp rounding (e.g. 1 ms ticks)
                        arr = rf.to_ndarray()
                        lo, hi = max(s0, pos), min(s1, pos + arr.shape[1])
                        if hi > lo:
                            if lo > emitted:  # audio starts late or has a hole: keep sync with silence
                                yield np.zeros((arr.shape[0], lo - emitted), np.float32)
                            yield np.ascontiguousarray(arr[:, lo - pos:hi - pos], dtype=np.float32)
                            emitted = hi
                        pos += arr.shape[1]
                    if pos is not None and pos >= s1:
                        return
        except av.FFmpegError as e:
            raise DirectorError(f"video: audio of '{shown_path(path)}' failed to decode ({shown_error(e)}).",
                                field="video") from None

    return rate, layout, chunks()


def read_audio(ref: FootageRef) -> tuple[np.ndarray, int] | None:
    """The source audio under the selection as float32 ``(channels, samples)`` and its rate
    (see :func:`audio_window`). None when the clip is silent."""
    window = audio_window(ref)
    if window is None:
        return None
    rate, _layout, chunks = iter_audio(ref.path, *window)
    parts = list(chunks)
    if not parts:
        return None
    return np.concatenate(parts, axis=1), rate
