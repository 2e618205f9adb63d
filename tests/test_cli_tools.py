"""``director doctor`` and ``director emulator`` (nodes/doctor.py, nodes/run_emulator.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from comfyui_director.__main__ import main
from comfyui_director.nodes.doctor import masked_url, report

KEY = "luma-api-fake-Zq8vK2pX9wLmN4tR7yB1"  # made up (and shaped so no key scanner takes it for real)


def test_doctor_reports_comfyui_dependencies_ocio_tracking_key_and_ledger(tmp_path, monkeypatch, capsys):
    comfy = tmp_path / "ComfyUI"
    (comfy / "user" / "director").mkdir(parents=True)
    (comfy / "comfyui_version.py").write_text('__version__ = "0.33.0"\n')
    (comfy / "user" / "director" / "luma_api_key").write_text(KEY + "\n")
    monkeypatch.delenv("LUMA_AGENTS_API_KEY", raising=False)
    monkeypatch.setenv("DIRECTOR_LEDGER_URL", "postgresql://farm:s3cr3t-pw@127.0.0.1:5432/director")
    assert main(["doctor", "--comfyui-dir", str(comfy)]) == 0
    out = capsys.readouterr().out
    assert "ComfyUI         0.33.0" in out
    for dep in ("av", "OpenEXR", "opencolorio", "luma-agents", "numpy"):
        assert f"  {dep} " in out
    assert "OCIO config     ocio://default (built-in)" in out
    assert "Tracking" in out
    assert "Luma API key    set (key file director/luma_api_key in ComfyUI's user folder)" in out
    assert "postgresql://farm:***@127.0.0.1:5432/director" in out and "s3cr3t" not in out
    # never the key, nor any part of it
    secret = KEY[len("luma-api-"):]  # the prefix every key shares is no secret ("luma-agents" holds it)
    assert not any(secret[i:i + 4] in out for i in range(len(secret) - 3))


def test_doctor_without_a_key_or_comfyui_says_where_they_go(monkeypatch):
    monkeypatch.delenv("LUMA_AGENTS_API_KEY", raising=False)
    monkeypatch.delenv("DIRECTOR_LEDGER_URL", raising=False)
    text, code = report(None)
    assert code == 0
    assert "Luma API key    not set (environment variable LUMA_AGENTS_API_KEY" in text
    assert "pass --comfyui-dir" in text
    monkeypatch.setenv("LUMA_AGENTS_API_KEY", KEY)
    text, _ = report(None)
    assert "set (environment variable LUMA_AGENTS_API_KEY)" in text and KEY[:9] + KEY[9:12] not in text


def test_masked_url_keeps_everything_but_the_password():
    assert masked_url("postgresql://u:p%40ss@db.local:5433/x?sslmode=require") == \
        "postgresql://u:***@db.local:5433/x?sslmode=require"
    assert masked_url("sqlite:///ledger.db") == "sqlite:///ledger.db"


def test_director_emulator_starts_the_bundled_emulator_with_its_flags():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "comfyui_director", "emulator", "--port", str(port),
                             "--key", "doctor-test"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, answered = time.time() + 60, None
        while time.time() < deadline and answered is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/generations/none", timeout=5)
                answered = 200
            except urllib.error.HTTPError as e:
                answered = e.code  # an HTTP answer: the emulator is up (no key: 401)
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stdout.read().decode(errors="replace"))
                time.sleep(0.2)
        assert answered in (401, 404)
    finally:
        proc.terminate()
        proc.wait(15)
    help_text = subprocess.run([sys.executable, "-m", "comfyui_director", "emulator", "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    assert "--port" in help_text and "--balance" in help_text
