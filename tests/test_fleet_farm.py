"""The farm: Celery workers (real Redis) each bound to one ComfyUI server. Shots spread over the
workers; a worker killed mid-shot hands the shot to another worker on another server; with real
ComfyUI servers sharing one PostgreSQL ledger that second delivery bills nothing new."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comfyui_director.nodes.farm.cli import read_shots
from comfyui_director.nodes.farm.comfy import FarmError, apply_inputs, load_workflow, run_shot
from fake_comfy import FakeComfy
from services import create_database, pg_server, redis_url  # noqa: F401 (fixtures)

WF = {"1": {"class_type": "DirectorLumaEngine", "inputs": {"model": "ray-3.2"}},
      "2": {"class_type": "DirectorGenerateVideo", "inputs": {"prompt": "a fox", "engine": ["1", 0]}}}


# --- plain parts ------------------------------------------------------------------------------------
def test_shot_inputs_go_into_a_copy_of_the_workflow():
    wf = apply_inputs(WF, {"2": {"prompt": "a heron"}, "1.model": "ray-3.2-hdr"})
    assert wf["2"]["inputs"] == {"prompt": "a heron", "engine": ["1", 0]} and wf["1"]["inputs"]["model"] == "ray-3.2-hdr"
    assert WF["2"]["inputs"]["prompt"] == "a fox"  # the submitted workflow is untouched
    with pytest.raises(FarmError, match="no node '7'"):
        apply_inputs(WF, {"7.prompt": "x"})
    with pytest.raises(FarmError, match="node.input"):
        apply_inputs(WF, {"prompt": "x"})


def test_workflow_must_be_api_format(tmp_path):
    assert load_workflow(json.dumps({"prompt": WF})) == WF  # a saved /prompt body
    with pytest.raises(FarmError, match="Export \\(API\\)"):
        load_workflow(json.dumps({"nodes": [], "links": []}), "shot.json")
    with pytest.raises(FarmError, match="not JSON"):
        load_workflow("{", "shot.json")


def test_shots_file_is_a_json_list_or_json_lines(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"2.prompt": "one"}, {"2.prompt": "two"}]))
    (tmp_path / "b.jsonl").write_text('{"2.prompt": "one"}\n\n{"2.prompt": "two"}\n')
    assert read_shots(str(tmp_path / "a.json")) == read_shots(str(tmp_path / "b.jsonl")) == [
        {"2.prompt": "one"}, {"2.prompt": "two"}]
    assert read_shots(None) == [{}]
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(FarmError, match="object of inputs"):
        read_shots(str(tmp_path / "c.json"))


def test_a_shot_is_followed_on_ws_and_read_from_history(tmp_path):
    with FakeComfy(tmp_path / "out", render_s=0.3) as comfy:
        run = run_shot(comfy.url, apply_inputs(WF, {"2.prompt": "a heron"}))
    assert run.status == "success" and run.jobs and run.outputs == [f"output/{p.name}" for p in (tmp_path / "out").iterdir()]
    assert 0.3 <= run.seconds < 1.5
    assert comfy.prompts[0]["prompt"]["2"]["inputs"]["prompt"] == "a heron"


# --- workers ------------------------------------------------------------------------------------------
def _worker(comfy_url: str, broker: str, name: str, log: Path, **env) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "comfyui_director", "farm", "worker", "--comfy", comfy_url,
                             "--broker", broker, "--name", name], stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, **env})
    deadline = time.monotonic() + 90
    while b" ready." not in log.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.1)
    return proc


def _submit(wf: Path, broker: str, shots: Path | None = None, timeout: float = 120, **env) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "comfyui_director", "farm", "submit", str(wf), "--broker", broker, "--wait",
           "--timeout", str(timeout)]
    if shots:
        cmd += ["--shots", str(shots)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def _stop(*procs) -> None:
    for p in procs:
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _flush(broker: str) -> None:
    import redis

    redis.Redis.from_url(broker).flushdb()


def test_shots_spread_over_workers_bound_to_their_own_servers(redis_url, tmp_path):
    _flush(redis_url)
    wf = tmp_path / "shot.json"
    wf.write_text(json.dumps(WF))
    shots = tmp_path / "shots.jsonl"
    shots.write_text("\n".join(json.dumps({"2.prompt": f"shot {i}"}) for i in range(6)))
    with FakeComfy(tmp_path / "a", render_s=0.4) as a, FakeComfy(tmp_path / "b", render_s=0.4) as b:
        wa = wb = None
        try:
            wa = _worker(a.url, redis_url, "a", tmp_path / "a.log")
            wb = _worker(b.url, redis_url, "b", tmp_path / "b.log")
            out, err = _submit(wf, redis_url, shots).communicate(timeout=120)
        finally:
            _stop(wa, wb)
    assert "6/6 shots delivered" in out, out + err
    assert len(a.prompts) + len(b.prompts) == 6 and a.prompts and b.prompts  # both servers worked
    prompts = sorted(p["prompt"]["2"]["inputs"]["prompt"] for p in a.prompts + b.prompts)
    assert prompts == [f"shot {i}" for i in range(6)]  # each shot once, with its own inputs


def test_a_worker_killed_mid_shot_hands_it_to_another_worker_on_another_server(redis_url, tmp_path):
    _flush(redis_url)
    env = {"DIRECTOR_FARM_VISIBILITY_S": "4"}  # a dead worker's shot is taken again after 4 s
    wf = tmp_path / "shot.json"
    wf.write_text(json.dumps(WF))
    with FakeComfy(tmp_path / "a", render_s=30) as a, FakeComfy(tmp_path / "b", render_s=0.3) as b:
        wa = wb = sub = None
        try:
            wa = _worker(a.url, redis_url, "a", tmp_path / "a.log", **env)
            sub = _submit(wf, redis_url, **env)
            deadline = time.monotonic() + 60
            while not a.prompts:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            os.kill(wa.pid, signal.SIGKILL)  # the machine running worker a dies mid-shot
            wa.wait()
            wb = _worker(b.url, redis_url, "b", tmp_path / "b.log", **env)
            out, err = sub.communicate(timeout=120)
        finally:
            _stop(wa, wb, sub)
    assert "1/1 shots delivered" in out and b.url in out, out + err
    assert len(a.prompts) == 1 and len(b.prompts) == 1


# --- real ComfyUI servers, one PostgreSQL, the Luma emulator -------------------------------------------
LUMA_KEY = "luma-farm-test-key-0123456789"


def luma_graph(prompt: str) -> dict:
    return {
        "1": {"class_type": "DirectorLumaEngine",
              "inputs": {"model": "ray-3.2", "poll_interval": 0.5, "max_concurrent_jobs": 4,
                         "max_credits_per_job": 100, "max_credits_per_session": 0, "user_id": ""}},
        "2": {"class_type": "DirectorGenerateVideo",
              "inputs": {"prompt": prompt, "engine": ["1", 0], "duration": "5 s", "resolution": "360p",
                         "aspect_ratio": "16:9", "loop": False, "hdr": False, "exr": False, "max_keyframes": 16,
                         "filename_prefix": "director/farm/shot", "preview_frames": 0}},
    }


@pytest.mark.comfyui
def test_worker_killed_mid_render_redelivered_to_another_comfyui_bills_one_job(pg_server, redis_url, tmp_path):
    from comfyui_director.nodes.engines.luma.emulator import LumaEmulator
    from comfyui_server import ComfyServer

    _flush(redis_url)
    ledger = create_database(pg_server)
    env = {"DIRECTOR_FARM_VISIBILITY_S": "5"}
    wf = tmp_path / "shot.json"
    wf.write_text(json.dumps(luma_graph("a lighthouse in a storm, slow push in")))
    with LumaEmulator(api_keys={LUMA_KEY: {}}, queued_s=0.5, processing_s=8.0) as emu:
        comfy_env = {"LUMA_AGENTS_API_KEY": LUMA_KEY, "LUMA_BASE_URL": emu.base_url, "DIRECTOR_LEDGER_URL": ledger}
        with ComfyServer(os.environ["COMFYUI_DIR"], tmp_path / "server_a", env=comfy_env) as a, \
                ComfyServer(os.environ["COMFYUI_DIR"], tmp_path / "server_b", env=comfy_env) as b:
            wa = wb = sub = None
            try:
                wa = _worker(a.url, redis_url, "a", tmp_path / "a.log", **env)
                sub = _submit(wf, redis_url, timeout=300, **env)
                deadline = time.monotonic() + 120
                while not emu.generations:  # server a's render created the Luma job
                    assert time.monotonic() < deadline, (tmp_path / "server_a" / "comfyui.log").read_text()[-3000:]
                    time.sleep(0.1)
                os.kill(wa.pid, signal.SIGKILL)  # worker a dies mid-render
                wa.wait()
                wb = _worker(b.url, redis_url, "b", tmp_path / "b.log", **env)
                out, err = sub.communicate(timeout=300)
            finally:
                _stop(wa, wb, sub)
        gid = emu.generations[0]["id"]
        assert "1/1 shots delivered" in out and b.url in out and gid in out, out + err
        assert emu.jobs_created == 1 and emu.billed_jobs == 1
    assert list((tmp_path / "server_b" / "output" / "director" / "farm").glob("shot_v*/shot.mp4"))
    user_files = [p for d in ("server_a", "server_b") for p in (tmp_path / d / "user").rglob("*") if p.is_file()]
    from urllib.parse import urlsplit

    password = urlsplit(pg_server).password.encode()
    for p in user_files + [tmp_path / d / "comfyui.log" for d in ("server_a", "server_b")]:
        assert password not in p.read_bytes(), p  # the ledger URL's password is in no file ComfyUI wrote


@pytest.mark.comfyui
def test_two_comfyui_servers_queue_the_same_shot_at_once_while_luma_answers_429_and_bill_one_job(pg_server, tmp_path):
    import threading

    from comfyui_director.nodes.engines.luma.emulator import Fault, LumaEmulator
    from comfyui_server import ComfyServer

    ledger = create_database(pg_server)
    graph = luma_graph("two servers, one shot: a kite over dunes")
    with LumaEmulator(api_keys={LUMA_KEY: {}}, queued_s=0.3, processing_s=2.0) as emu:
        emu.inject(Fault(status=429, retry_after=1, times=4))  # "at the job limit" for about 4 s
        env = {"LUMA_AGENTS_API_KEY": LUMA_KEY, "LUMA_BASE_URL": emu.base_url, "DIRECTOR_LEDGER_URL": ledger}
        with ComfyServer(os.environ["COMFYUI_DIR"], tmp_path / "server_a", env=env) as a, \
                ComfyServer(os.environ["COMFYUI_DIR"], tmp_path / "server_b", env=env) as b:
            entries: dict = {}
            go = threading.Barrier(2)

            def queue(server, name):
                go.wait()
                entries[name] = server.run_prompt(graph, timeout=300)

            ts = [threading.Thread(target=queue, args=(s, n)) for s, n in ((a, "a"), (b, "b"))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(320)
            assert emu.jobs_created == 1 and emu.billed_jobs == 1
            gid = emu.generations[0]["id"]
            for name, entry in entries.items():  # both prompts end: the shot, or a message naming the job
                text = json.dumps(entry)
                assert entry["status"]["status_str"] == "success" or gid in text, (name, text[:3000])
            assert sum(e["status"]["status_str"] == "success" for e in entries.values()) >= 1
            posts = sum(1 for r in emu.requests if r.method == "POST" and r.path == "/generations")
            # queued again later on either server: nothing billed, no new create
            later = luma_graph("two servers, one shot: a kite over dunes")
            later["2"]["inputs"]["filename_prefix"] = "director/farm/later"  # not cached by ComfyUI: it runs
            for server in (a, b):
                again = server.run_prompt(later, timeout=300)
                assert again["status"]["status_str"] == "success" and gid in json.dumps(again), json.dumps(again)[:3000]
            assert emu.jobs_created == 1 and emu.billed_jobs == 1
            assert sum(1 for r in emu.requests if r.method == "POST" and r.path == "/generations") == posts


def test_farm_commands_refuse_bad_input_with_one_clear_line(tmp_path):
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps({"nodes": [], "links": []}))
    run = subprocess.run([sys.executable, "-m", "comfyui_director", "farm", "submit", str(ui)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and "Export (API)" in run.stderr and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "comfyui_director", "farm", "worker", "--comfy",
                          f"http://127.0.0.1:{_closed_port()}"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "cannot be reached" in run.stderr and "Traceback" not in run.stderr


def _closed_port() -> int:
    from services import free_port

    return free_port()


def test_the_pack_and_its_command_line_load_no_farm_or_database_client():
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import comfy_stub; comfy_stub.install()\n"
            "import comfyui_director.nodes.extension, comfyui_director.__main__ as m\n"
            "try:\n    m.main(['farm', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('celery', 'kombu', 'psycopg', 'redis')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
