"""bench/bench_local.py --full: GPU readiness without a GPU (issue 22 item 5).

On a machine without a CUDA GPU ``--full`` says so in one line and exits 0, having written
nothing. The full-size random checkpoints it would write are checked here without writing them:
their architectures' parameter counts (LTX-Video 2B-class, Wan 2.1 VACE 1.3B with its 15 VACE
blocks) on torch's meta device, and the writer's full-size path (bfloat16, the full names, kept
when already there) at the tiny scale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from local_models import FULL_NAMES, count_parameters, full_paths, write_full_models  # noqa: E402


def test_full_on_a_machine_without_a_gpu_says_so_and_exits_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_DIR"}
    env.update(CUDA_VISIBLE_DEVICES="", HOME=str(tmp_path), DIRECTOR_BENCH_MODELS=str(tmp_path / "models"))
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_local.py"), "--full"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench_local --full: no CUDA GPU here"), out.stdout
    assert "nothing was measured or written" in lines[0]
    assert not (tmp_path / "models").exists() and not list(tmp_path.iterdir())


def test_without_full_or_comfyui_it_names_the_setting():
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_DIR"}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_local.py")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "COMFYUI_DIR" in out.stderr


def _comfy() -> tuple[str, str]:
    from comfyui_server import _python

    comfy_dir = os.environ["COMFYUI_DIR"]
    return comfy_dir, _python(Path(comfy_dir))


@pytest.mark.comfyui
def test_the_full_architectures_are_the_sizes_they_are_named_for():
    counts = count_parameters(*_comfy(), spec="full")
    assert 1.8e9 < counts["ltxv"] < 2.2e9, counts  # LTX-Video 2B
    assert 2.0e9 < counts["wan"] < 2.3e9, counts  # Wan 2.1 1.3B (~1.4B) + 15 VACE blocks of ~46M
    assert 0.1e9 < counts["wan_vae"] < 0.2e9 and 0.5e9 < counts["ltxv_vae"] < 1.2e9, counts
    tiny = count_parameters(*_comfy(), spec="tiny")
    assert all(tiny[k] < 0.01 * counts[k] for k in counts), tiny  # the same code, another scale


def header(path: Path) -> dict:
    """A safetensors file's header: 8 bytes of length, then JSON (tensor name -> dtype, shape, offsets)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))


@pytest.mark.comfyui
def test_the_full_size_writer_path_at_the_tiny_scale(tmp_path):
    comfy_dir, python = _comfy()
    paths = write_full_models(tmp_path, comfy_dir, python, spec="tiny")
    assert paths == full_paths(tmp_path) and {p.name for p in paths.values()} == set(FULL_NAMES.values())
    for role, path in paths.items():
        head = header(path)
        json.loads(head.pop("__metadata__")["config"])
        assert head and {t["dtype"] for t in head.values()} <= {"BF16", "I64", "BOOL"}, role
    assert not list(tmp_path.rglob("*.partial"))
    stamps = {p: p.stat().st_mtime_ns for p in paths.values()}
    write_full_models(tmp_path, comfy_dir, python, spec="tiny")  # all there: kept, not written again
    assert {p: p.stat().st_mtime_ns for p in paths.values()} == stamps
