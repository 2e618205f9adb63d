"""Any ComfyUI VIDEO becomes a FootageRef (nodes/footage/refs.py)."""

from __future__ import annotations

import io
import types
from fractions import Fraction

import comfy_stub
import numpy as np
import torch
from media import expected_frame, frame_number, make_clip

from comfyui_director.nodes.footage.refs import footage_from_video
from comfyui_director.nodes.footage.stream import FootageRef, FootageSelection, iter_chunks, probe, read_audio


class VideoFromComponents:
    """Shape of core's tensor-backed VIDEO (what Create Video returns)."""

    def __init__(self, images, audio=None, fps=Fraction(24)):
        self._c = types.SimpleNamespace(images=images, audio=audio, frame_rate=fps)

    def get_components(self):
        return self._c


def test_director_video_passes_its_ref_through():
    ref = FootageRef("/x/clip.mp4", FootageSelection(start=3))
    assert footage_from_video(types.SimpleNamespace(director_footage=ref)) is ref


def test_file_video_trim_window_becomes_a_frame_selection(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=48)
    ref = footage_from_video(comfy_stub.VideoFromFile(str(clip), start_time=0.5, duration=0.25))
    assert ref.path == str(clip) and ref.selection == FootageSelection(start=12, count=6)
    assert [frame_number(f) for c in iter_chunks(ref) for f in c] == list(range(12, 18))


def test_in_memory_video_is_spilled_once_to_a_file(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=6)
    video = comfy_stub.VideoFromFile(io.BytesIO(clip.read_bytes()))
    spill = tmp_path / "spill"
    first = footage_from_video(video, spill_dir=spill)
    again = footage_from_video(video, spill_dir=spill)
    assert first.path == again.path and len(list(spill.iterdir())) == 1
    assert probe(first.path).frame_count == 6


def test_component_video_is_written_losslessly_with_its_audio(tmp_path):
    frames = np.stack([expected_frame(i, 64, 36) for i in range(5)])
    t = np.arange(24000) / 48000
    wave = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.cos(2 * np.pi * 220 * t)]).astype(np.float32)
    video = VideoFromComponents(torch.from_numpy(frames.astype(np.float32) / 255),
                                {"waveform": torch.from_numpy(wave)[None], "sample_rate": 48000})
    ref = footage_from_video(video, spill_dir=tmp_path)
    info = probe(ref.path)
    assert (info.frame_count, info.width, info.height, info.fps) == (5, 64, 36, 24)
    decoded = np.concatenate(list(iter_chunks(ref)))
    assert np.array_equal(decoded, frames)  # bit-exact, unlike core's lossy 4:2:0 re-encode
    got, rate = read_audio(ref)
    n = min(got.shape[1], wave.shape[1])
    assert rate == 48000 and n > 9000 and np.abs(got[:, :n] - wave[:, :n]).max() < 1e-6
    assert footage_from_video(video, spill_dir=tmp_path) is ref  # spilled once per VIDEO


def test_node_spills_go_to_comfy_temp_and_are_removed_with_their_video(comfy_dirs, tmp_path):
    """EXR Writer, Save Video and Grab Frames spill in-memory VIDEOs into ComfyUI's temp folder
    (which ComfyUI empties), never an uncleaned system temp folder, and drop each spill once no
    VIDEO needs it."""
    import gc
    import tempfile
    from pathlib import Path

    from comfyui_director.nodes.exr.nodes import DirectorEXRWriter
    from comfyui_director.nodes.footage.nodes import DirectorGrabFrames

    system_spill = Path(tempfile.gettempdir()) / "director-spill"
    before = set(system_spill.iterdir()) if system_spill.is_dir() else set()
    clip = make_clip(tmp_path / "c.mp4", 32, 18, frames=3)
    comfy_spill = comfy_dirs / "temp" / "director-spill"

    video = comfy_stub.VideoFromFile(io.BytesIO(clip.read_bytes()))
    folder, count = DirectorEXRWriter.execute(video=video, compression="ZIP").result
    assert count == 3 and len(list((comfy_dirs / "output" / folder).iterdir())) == 3
    images = DirectorGrabFrames.execute(video=video, frames="0, -1").args[0]
    assert tuple(images.shape) == (2, 18, 32, 3)
    assert len(list(comfy_spill.iterdir())) == 1  # one spill, reused by both nodes
    frames = torch.from_numpy(np.stack([expected_frame(i, 32, 18) for i in range(2)]).astype(np.float32) / 255)
    tensor_video = VideoFromComponents(frames)
    assert DirectorEXRWriter.execute(video=tensor_video, compression="ZIP").result[1] == 2
    assert len(list(comfy_spill.iterdir())) == 2
    assert (set(system_spill.iterdir()) if system_spill.is_dir() else set()) == before

    del video, tensor_video
    gc.collect()
    assert list(comfy_spill.iterdir()) == []  # nothing left once no VIDEO needs it
