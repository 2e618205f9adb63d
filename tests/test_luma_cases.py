"""Issue #28, case by case: each way one shot was billed more than once, or a download trusted the
server, reproduced against the emulator with the fault it needs. Each assertion says what it
measured (jobs billed, bytes written) so a failing run reads as the 'before' of the issue's table."""

from __future__ import annotations

import asyncio
import http.server
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.engines.luma.emulator import Fault, LumaEmulator
from comfyui_director.nodes.engines.luma.engine import LumaEngine
from comfyui_director.nodes.engines.luma.limits import SessionSpend
from comfyui_director.nodes.footage.stream import FootageRef, probe
from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget
from comfyui_director.nodes.shot.geometry import ReframeCanvas
from comfyui_director.nodes.shot.reframe import build_reframe_request
from comfyui_director.nodes.shot.request import build_request

try:
    from comfyui_director.nodes.engines.luma.ledger_sqlite import JobLedger
except ImportError:  # the code before the ledger interface (for the 'before' column)
    from comfyui_director.nodes.engines.luma.ledger import JobLedger

KEY = "luma-cases-key-0123456789abcdef"
OTHER_KEY = "luma-cases-rotated-key-fedcba9876543210"


@pytest.fixture
def emu():
    with LumaEmulator(api_keys={KEY: {}, OTHER_KEY: {}}, queued_s=0.05, processing_s=0.15) as e:
        yield e


class Hooks(RenderHooks):
    def __init__(self, on_line=None):
        self.lines: list[str] = []
        self.on_line = on_line

        def status(text):
            self.lines.append(text)
            if self.on_line is not None:
                self.on_line(text)

        super().__init__(status=status)


def engine(emu, tmp_path, **kw) -> LumaEngine:
    kw.setdefault("poll_interval_s", 0.05)
    kw.setdefault("retry_base_s", 0.05)
    kw.setdefault("spend", SessionSpend())
    return LumaEngine(api_key=kw.pop("api_key", KEY), base_url=kw.pop("base_url", emu.base_url),
                      ledger_path=tmp_path / "ledger.sqlite3", **kw)


def render(eng, req, folder: Path, hooks=None):
    folder.mkdir(parents=True, exist_ok=True)
    return asyncio.run(eng.render(req, RenderTarget(folder, "shot"), hooks or Hooks()))


def req(prompt="a red fox in snow", **kw):
    kw.setdefault("resolution", "360p")
    return build_request(prompt, **kw)


def posts(emu) -> int:
    return sum(1 for r in emu.requests if r.method == "POST" and r.path == "/generations")


def rows(tmp_path):
    return JobLedger(tmp_path / "ledger.sqlite3").jobs()


# --- 1. chained shots after a restart ---------------------------------------------------------------
def _chain(emu, tmp_path, run: int):
    """One queue of Generate -> Reframe, as run_engine does it: each result lands in a new version
    folder and the next node gets a FootageRef with the result's path and metadata."""
    eng = engine(emu, tmp_path)  # a restarted ComfyUI: a new engine, the same ledger
    gen = render(eng, req(aspect_ratio="16:9"), tmp_path / f"gen_v{run:03d}")
    footage = FootageRef(path=str(gen.video), metadata=gen.metadata)
    reframe = build_reframe_request("wide beach", footage, ReframeCanvas("9:16", 0.0, 0.3, 1.0, 0.3164),
                                    resolution="360p")
    return gen, render(eng, reframe, tmp_path / f"reframe_v{run:03d}")


def test_case1_a_chained_reframe_is_not_billed_again_after_a_restart(emu, tmp_path):
    _chain(emu, tmp_path, 1)
    assert emu.jobs_created == 2
    gen, ref = _chain(emu, tmp_path, 2)
    assert gen.metadata["luma_job"] == "reused"
    assert emu.jobs_created == 2, f"jobs billed for 2 runs of a 2-shot chain: {emu.jobs_created}"
    assert ref.metadata["luma_job"] == "reused"


# --- 2. an uncertain send is never followed by another send -----------------------------------------
def test_case2_the_same_prompt_queued_again_after_an_uncertain_send_sends_nothing(emu, tmp_path):
    from comfyui_director.nodes.engines.luma.transport import LumaUncertain

    emu.inject(Fault(drop_after_create=True))
    eng = engine(emu, tmp_path)
    with pytest.raises(LumaUncertain):
        render(eng, req(), tmp_path / "a")
    try:
        render(eng, req(), tmp_path / "b")  # Run pressed twice, before the message was read
    except LumaUncertain as e:
        assert "director ledger" in str(e)
    assert emu.jobs_created == 1, f"jobs billed: {emu.jobs_created}"


def test_case2_two_renders_of_one_shot_racing_in_one_process_send_once(emu, tmp_path):
    from comfyui_director.nodes.engines.luma.transport import LumaUncertain

    emu.inject(Fault(drop_after_create=True))
    eng = engine(emu, tmp_path)

    async def both():
        return await asyncio.gather(*[eng.render(req(), RenderTarget(_mk(tmp_path / f"n{i}"), "shot"), Hooks())
                                      for i in range(2)], return_exceptions=True)

    outcomes = asyncio.run(both())
    assert emu.jobs_created == 1, f"jobs billed: {emu.jobs_created}"
    assert all(isinstance(o, LumaUncertain) for o in outcomes), outcomes


RENDER_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from comfyui_director.nodes.engines.luma.engine import LumaEngine
    from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget
    from comfyui_director.nodes.shot.request import build_request
    base, ledger, out, key = sys.argv[1:5]
    eng = LumaEngine(api_key=key, base_url=base, ledger_path=ledger, poll_interval_s=0.05)
    Path(out).mkdir(parents=True, exist_ok=True)
    res = asyncio.run(eng.render(build_request("a red fox in snow", resolution="360p"), RenderTarget(Path(out)),
                                 RenderHooks()))
    print(res.job_id)
""")


def test_case2_a_second_process_whose_wall_clock_is_ahead_does_not_take_a_live_send_for_dead(emu, tmp_path,
                                                                                                 monkeypatch):
    from comfyui_director.nodes.engines.luma.transport import LumaUncertain

    emu.inject(Fault(hold=True))  # the first process's create is held at the server
    first = subprocess.Popen([sys.executable, "-c", RENDER_SCRIPT, emu.base_url, str(tmp_path / "ledger.sqlite3"),
                              str(tmp_path / "first"), KEY], stdout=subprocess.PIPE, text=True)
    try:
        assert emu.wait_held(60), "the first process never sent"
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 3600.0)  # this process's clock is an hour ahead
        claimed = threading.Event()
        out: list = []

        def second():
            for attempt in range(2):  # the old message said: queue the graph again
                try:
                    out.append(render(engine(emu, tmp_path), req(), tmp_path / f"second{attempt}",
                                      Hooks(on_line=lambda t: "waiting" in t and claimed.set())).job_id)
                    return
                except LumaUncertain as e:
                    out.append(e)
                    claimed.set()

        t = threading.Thread(target=second)
        t.start()
        assert claimed.wait(60)
        emu.release()
        t.join(120)
        first_out, _ = first.communicate(timeout=120)
    finally:
        emu.release()
        if first.poll() is None:
            first.kill()
    assert emu.jobs_created == 1, f"jobs billed: {emu.jobs_created} ({out})"
    assert out == [first_out.strip()]


# --- 3. a 502 after the job was made -----------------------------------------------------------------
def test_case3_a_502_after_the_job_was_made_is_not_retried(emu, tmp_path):
    from comfyui_director.nodes.engines.luma.transport import LumaUncertain

    emu.inject(Fault(status=502, after_create=True, times=3))
    eng = engine(emu, tmp_path)
    with pytest.raises(LumaUncertain) as e:
        render(eng, req(), tmp_path / "a")
    assert emu.jobs_created == 1, f"jobs billed: {emu.jobs_created}; rows {[j.state for j in rows(tmp_path)]}"
    assert "502" in str(e.value)
    assert [j.state for j in rows(tmp_path)] == ["uncertain"]


def test_case3_answers_that_prove_no_job_was_made_are_retried(emu, tmp_path):
    emu.inject(Fault(status=503, detail="image ingestion unavailable", times=2), Fault(status=429, retry_after=0.1))
    res = render(engine(emu, tmp_path), req(), tmp_path / "a")
    assert res.video.is_file() and emu.jobs_created == 1 and posts(emu) == 4


# --- 4. the session cap counts sends that may have been billed --------------------------------------
def test_case4_the_session_cap_counts_uncertain_sends(emu, tmp_path):
    from comfyui_director.nodes.engines.luma.transport import LumaUncertain

    cost = req().credits()
    cap = 2 * cost
    emu.inject(Fault(drop_after_create=True, times=5))
    eng = engine(emu, tmp_path, max_credits_per_session=cap)
    refused = 0
    for i in range(5):
        try:
            render(eng, req(f"shot number {i}"), tmp_path / f"s{i}")
        except LumaUncertain:
            pass
        except DirectorError as e:
            assert "max_credits_per_session" in str(e)
            refused += 1
    assert emu.credits_billed <= cap, f"credits billed: {emu.credits_billed} with a cap of {cap}"
    assert emu.jobs_created == 2 and refused == 3


# --- 5. a job failed for a reason a retry cannot fix ---------------------------------------------------
@pytest.mark.parametrize("code", ["content_moderated", "budget_exhausted"])
def test_case5_a_final_failure_is_refused_by_name_not_sent_again(emu, tmp_path, code):
    from comfyui_director.nodes.engines.luma.transport import LumaError

    emu.inject(Fault(route="job", failure_code=code))
    eng = engine(emu, tmp_path)

    async def twins():
        return await asyncio.gather(*[eng.render(req(), RenderTarget(_mk(tmp_path / f"t{i}"), "shot"), Hooks())
                                      for i in range(2)], return_exceptions=True)

    outcomes = asyncio.run(twins())
    again = None
    try:
        render(eng, req(), tmp_path / "again")  # queued again, unchanged
    except LumaError as e:
        again = str(e)
    assert emu.jobs_created == 1, f"jobs sent: {emu.jobs_created} ({outcomes}, {again})"
    assert again is not None and code in again
    assert all(isinstance(o, LumaError) for o in outcomes)
    render(eng, req("a red fox in deep snow"), tmp_path / "changed")  # a changed request is a new shot
    assert emu.jobs_created == 2


# --- 6. the shot key is the shot -----------------------------------------------------------------------
def test_case6_a_proxy_a_user_id_or_a_rotated_key_is_the_same_shot(emu, tmp_path):
    render(engine(emu, tmp_path), req(), tmp_path / "a")
    proxy = emu.base_url.replace("127.0.0.1", "localhost")  # the same service through another address
    render(engine(emu, tmp_path, base_url=proxy), req(), tmp_path / "b")
    render(engine(emu, tmp_path, user_id="artist-7"), req(), tmp_path / "c")
    res = render(engine(emu, tmp_path, api_key=OTHER_KEY), req(), tmp_path / "d")
    assert emu.jobs_created == 1, f"jobs billed: {emu.jobs_created}"
    assert res.metadata["luma_job"] == "reused"


def test_case6_a_running_job_another_key_made_is_polled_and_a_refusal_is_named(emu, tmp_path):
    from comfyui_director.nodes.engines.luma.transport import LumaError

    row = _created_row(emu, tmp_path, KEY)
    with pytest.raises(LumaError) as e:  # the emulator's keys are separate accounts: Luma refuses (404)
        render(engine(emu, tmp_path, api_key=OTHER_KEY), req(), tmp_path / "other")
    msg = str(e.value)
    assert row.generation_id in msg and "another API key" in msg and "nothing was sent" in msg.lower()
    assert emu.jobs_created == 1, f"jobs billed: {emu.jobs_created}"
    res = render(engine(emu, tmp_path), req(), tmp_path / "own")  # the key that made it delivers it
    assert res.job_id == row.generation_id and emu.jobs_created == 1


def _created_row(emu, tmp_path, key):
    """A render killed right after its job was made: the row holds the job id, nobody follows it."""
    import httpx

    from comfyui_director.nodes.engines.luma.keys import SecretKey

    eng = engine(emu, tmp_path, api_key=key)
    ledger = eng.ledger
    c = ledger.claim(eng.request_hash(req()), SecretKey(key, "test").account, credits=20, owner="another-host:1:n",
                     stale_after_s=600)
    ledger.mark_submitting(c.job.id, c.job.owner)
    r = httpx.post(emu.base_url + "/generations", json={"model": "ray-3.2", "type": "video", "prompt": "x",
                                                         "aspect_ratio": "16:9", "video": {"resolution": "360p"}},
                   headers={"Authorization": f"Bearer {key}"})
    row = ledger.mark_created(c.job.id, c.job.owner, r.json()["id"], "queued")
    ledger.release_all(c.job.owner)
    return row


# --- 7. a ledger error while marking 'submitting' leaks nothing ---------------------------------------
def test_case7_a_ledger_error_before_sending_gives_the_slot_and_the_credits_back(emu, tmp_path, monkeypatch):
    import sqlite3

    spend = SessionSpend()
    eng = engine(emu, tmp_path, max_concurrent_jobs=1, spend=spend)
    cls = type(eng.ledger)
    real = cls.mark_submitting

    def broken(self, *a, **kw):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(cls, "mark_submitting", broken)
    with pytest.raises(Exception) as e:
        render(eng, req(), tmp_path / "a")
    assert str(tmp_path) not in str(e.value)
    assert spend.committed == 0, f"credits still reserved: {spend.committed}"
    monkeypatch.setattr(cls, "mark_submitting", real)

    async def again():
        return await asyncio.wait_for(eng.render(req(), RenderTarget(_mk(tmp_path / "b"), "shot"), Hooks()), 30)

    try:
        res = asyncio.run(again())
    except asyncio.TimeoutError:
        pytest.fail("the next render waited 30 s for the job slot the failed render kept")
    assert res.video.is_file() and emu.jobs_created == 1


# --- 8. a paid result is delivered where hard links fail --------------------------------------------
def test_case8_a_result_is_delivered_on_a_file_system_without_hard_links(emu, tmp_path, monkeypatch):
    def no_links(src, dst, *a, **kw):
        raise PermissionError(1, "Operation not permitted", str(src), str(dst))

    monkeypatch.setattr(os, "link", no_links)
    eng = engine(emu, tmp_path)
    try:
        res = render(eng, req(), tmp_path / "a")
    except Exception as e:  # noqa: BLE001 - the 'before' column
        pytest.fail(f"not delivered: {type(e).__name__}: {e}")
    assert res.video.is_file() and probe(res.video).frame_count > 0
    again = render(eng, req(), tmp_path / "b")  # reused without links: copied, no new job
    assert again.video.is_file() and emu.jobs_created == 1


# --- 9. downloads with bounds ------------------------------------------------------------------------
class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        body = b"\x00\x00\x00\x18ftypmp42" + bytes(4096)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_case9_a_result_redirecting_to_another_host_is_not_followed(emu, tmp_path):
    _Counting.hits = []
    other = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _Counting)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        emu.inject(Fault(route="GET /_media/*", redirect_to=f"http://127.0.0.2:{other.server_address[1]}/x.mp4"))
        try:
            res = render(engine(emu, tmp_path), req(), tmp_path / "a")
        except DirectorError:
            res = None
    finally:
        other.shutdown()
        other.server_close()
    assert _Counting.hits == [], f"requests to the other host: {len(_Counting.hits)}"
    assert res is not None and probe(res.video).frame_count > 0 and emu.jobs_created == 1


def test_case9_an_endless_body_stops_at_the_shots_cap(emu, tmp_path):
    emu.inject(Fault(route="GET /_media/*", endless=True, times=10))
    eng = engine(emu, tmp_path)

    async def go():
        return await asyncio.wait_for(eng.render(req(), RenderTarget(_mk(tmp_path / "a"), "shot"), Hooks()), 60)

    with pytest.raises((DirectorError, asyncio.TimeoutError)) as e:
        asyncio.run(go())
    sent = emu.endless_bytes
    w, h = 640, 360
    cap = 121 * w * h * 3 + (16 << 20)
    assert not isinstance(e.value, asyncio.TimeoutError), f"still downloading after 60 s: {sent >> 20} MiB sent"
    assert "cap" in str(e.value) and "queue the graph again" in str(e.value)
    assert sent <= 3 * (cap + (8 << 20)), f"{sent >> 20} MiB taken in"
    assert not list((tmp_path / "a").iterdir())  # nothing half-written left
    assert [j.state for j in rows(tmp_path)] == ["completed"]  # paid and kept: a later run downloads it


def test_case9_a_stalled_download_is_given_up_and_fetched_again(emu, tmp_path):
    emu.inject(Fault(route="GET /_media/*", stall_s=20.0))
    eng = engine(emu, tmp_path, timeout_s=1.0)
    t0 = time.monotonic()
    res = render(eng, req(), tmp_path / "a")
    assert time.monotonic() - t0 < 15, "waited out the whole stall"
    assert probe(res.video).frame_count > 0 and emu.jobs_created == 1


def test_case9_a_download_past_its_deadline_is_given_up(emu, tmp_path, monkeypatch):
    from comfyui_director.nodes.engines.luma import download

    monkeypatch.setattr(download, "DOWNLOAD_DEADLINE_S", 0.5)
    emu.inject(Fault(route="GET /_media/*", stall_s=1.5, times=10))
    eng = engine(emu, tmp_path, timeout_s=5.0)
    t0 = time.monotonic()
    with pytest.raises(DirectorError, match="deadline|did not finish"):
        render(eng, req(), tmp_path / "a")
    assert time.monotonic() - t0 < 10


def test_case9_a_result_that_does_not_decode_is_not_kept(emu, tmp_path):
    emu.inject(Fault(route="GET /_media/*", garbage=True, times=3))
    eng = engine(emu, tmp_path)
    with pytest.raises(DirectorError) as e:
        render(eng, req(), tmp_path / "a")
    assert "decode" in str(e.value), str(e.value)
    assert [j.state for j in rows(tmp_path)] == ["completed"], "a file that does not decode was kept as downloaded"
    res = render(eng, req(), tmp_path / "b")  # within the link's life: downloaded again, no new job
    assert probe(res.video).frame_count > 0 and emu.jobs_created == 1


def test_case9_one_bad_download_is_fetched_again_with_a_fresh_link(emu, tmp_path):
    emu.inject(Fault(route="GET /_media/*", garbage=True))
    res = render(engine(emu, tmp_path), req(), tmp_path / "a")
    assert probe(res.video).frame_count > 0 and emu.jobs_created == 1


def test_case9_a_remote_base_url_over_plain_http_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMA_BASE_URL", "http://luma-proxy.example.com/v1")
    with pytest.raises(DirectorError) as e:
        LumaEngine(api_key=KEY, ledger_path=tmp_path / "l.sqlite3")
    assert "LUMA_BASE_URL" in str(e.value) and "https" in str(e.value)


def test_case9_result_links_must_be_https_except_on_loopback():
    from comfyui_director.nodes.engines.luma.transport import download_url_problem

    assert download_url_problem("https://cdn.lumalabs.ai/x.mp4", "https://cdn.lumalabs.ai/x.mp4") is None
    assert download_url_problem("http://127.0.0.1:8/x.mp4", "http://127.0.0.1:8/x.mp4") is None
    assert "https" in download_url_problem("http://cdn.lumalabs.ai/x.mp4", "http://cdn.lumalabs.ai/x.mp4")
    assert "another host" in download_url_problem("http://127.0.0.2:8/x", "http://127.0.0.1:8/x")
    assert download_url_problem("https://b.example/x", "https://a.example/x") is None  # CDN hops are https


def test_case9_an_unreachable_base_url_names_the_url_and_where_it_came_from(tmp_path, monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/v1"
    monkeypatch.setenv("LUMA_BASE_URL", url)
    eng = LumaEngine(api_key=KEY, ledger_path=tmp_path / "l.sqlite3", retry_base_s=0.01)
    with pytest.raises(DirectorError) as e:
        render(eng, req(), tmp_path / "a")
    assert url in str(e.value) and "environment variable LUMA_BASE_URL" in str(e.value)


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p
