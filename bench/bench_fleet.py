"""The fleet: what the shared ledger costs per shot, and what the Celery farm costs per shot.

Prints ONE table, side by side, from one run:
- ledger cost per shot: every ledger write of one Luma shot (claim, submitting, created, processing,
  completed, downloaded, plus two heartbeats), PostgreSQL (a real server on loopback) vs SQLite (a file
  in a temporary folder), in ms per shot (mean, p50, p95 over N shots with distinct keys);
- 100 shots: one server's own queue (all 100 prompts queued on one server's /prompt) vs 4 Celery workers
  (Redis broker) each bound to its own server, against the ideal (100 x L / 4). Goal: <= 1.05x ideal.
  The servers are a fake ComfyUI (tests/fake_comfy.py: /prompt, /history, /ws like ComfyUI, one prompt at
  a time, each taking a fixed L seconds), NOT a real ComfyUI: the bench measures the farm's overhead.

Needs PostgreSQL and Redis (Debian: apt-get install -y postgresql redis-server), or
DIRECTOR_TEST_PG_URL / DIRECTOR_TEST_REDIS_URL. ``--quick``: 40 ledger shots, 40 farm shots, L = 0.25 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_comfy import FakeComfy  # noqa: E402
from services import PostgresServer, RedisServer, create_database  # noqa: E402


def ledger_cost(location: str, shots: int, journal: Path) -> list[float]:
    """ms per shot for every ledger write of one shot."""
    from comfyui_director.nodes.engines.luma.ledger import owner_token
    from comfyui_director.nodes.engines.luma.ledger_backends import open_ledger

    led = open_ledger(location, journal_dir=journal)
    out = []
    for i in range(shots + 5):
        owner = owner_token()
        t0 = time.perf_counter()
        c = led.claim(f"bench-shot-{i}", "acct", credits=20, owner=owner, stale_after_s=600, summary="bench")
        led.mark_submitting(c.job.id, owner)
        led.mark_created(c.job.id, owner, f"gen-{i}", "queued")
        led.heartbeat(owner)
        led.mark_state(c.job.id, owner, "processing")
        led.heartbeat(owner)
        led.mark_completed(c.job.id, owner, [{"type": "video", "url": "u"}])
        led.mark_downloaded(c.job.id, owner, {"video": "v.mp4", "extra": []})
        if i >= 5:  # warm-up: connections, statement plans
            out.append((time.perf_counter() - t0) * 1000)
    led.close()
    return out


def own_queue(shots: int, render_s: float, tmp: Path) -> float:
    """Wall seconds for ``shots`` prompts queued on one server's own queue."""
    import urllib.request

    from comfyui_director.nodes.farm.comfy import _http

    with FakeComfy(tmp / "one", render_s=render_s) as comfy:
        t0 = time.perf_counter()
        pids = [_http("POST", f"{comfy.url}/prompt", {"prompt": {"1": {"class_type": "X", "inputs": {"i": i}}}})
                ["prompt_id"] for i in range(shots)]
        while len(comfy.history) < shots:
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        assert all(json.load(urllib.request.urlopen(f"{comfy.url}/history/{p}")) for p in pids[-1:])
    return wall


def farm(shots: int, render_s: float, workers: int, broker: str, tmp: Path) -> tuple[float, int]:
    """Wall seconds for ``shots`` submitted to ``workers`` Celery workers, each on its own server."""
    import redis

    from comfyui_director.nodes.farm.app import TASK, make_app

    redis.Redis.from_url(broker).flushdb()
    servers = [FakeComfy(tmp / f"s{i}", render_s=render_s).__enter__() for i in range(workers)]
    procs = []
    try:
        for i, s in enumerate(servers):
            log = tmp / f"w{i}.log"
            procs.append(subprocess.Popen([sys.executable, "-m", "comfyui_director", "farm", "worker", "--comfy", s.url,
                                           "--broker", broker, "--name", f"w{i}"], stdout=open(log, "wb"),
                                          stderr=subprocess.STDOUT))
        for i in range(workers):
            while b" ready." not in (tmp / f"w{i}.log").read_bytes():
                time.sleep(0.05)
        time.sleep(0.5)
        app = make_app(broker)
        wf = {"1": {"class_type": "X", "inputs": {"i": 0}}}
        t0 = time.perf_counter()
        results = [app.send_task(TASK, args=[wf, {"1.i": i}]) for i in range(shots)]
        outs = [r.get(timeout=600) for r in results]
        wall = time.perf_counter() - t0
        assert all(o["status"] == "success" for o in outs)
        assert sum(len(s.prompts) for s in servers) == shots
        return wall, sum(1 for s in servers if s.prompts)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        for s in servers:
            s.__exit__(None, None, None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_ledger, n_shots, render_s, workers = (40, 40, 0.25, 4) if args.quick else (200, 100, 1.0, 4)
    tmp = Path(tempfile.mkdtemp(prefix="director-bench-fleet-"))
    pg_server = redis_server = None
    pg_url = os.environ.get("DIRECTOR_TEST_PG_URL") or (pg_server := PostgresServer().start()).url
    broker = os.environ.get("DIRECTOR_TEST_REDIS_URL") or (redis_server := RedisServer().start()).url
    try:
        pg_ms = ledger_cost(create_database(pg_url), n_ledger, tmp / "j")
        sq_ms = ledger_cost(str(tmp / "ledger.sqlite3"), n_ledger, tmp / "j")
        one = own_queue(n_shots, render_s, tmp)
        wall, used = farm(n_shots, render_s, workers, broker, tmp)
    finally:
        if pg_server:
            pg_server.close()
        if redis_server:
            redis_server.close()
    ideal = n_shots * render_s / workers

    def stats(ms):
        q = statistics.quantiles(ms, n=20)
        return f"{statistics.mean(ms):.2f} / {statistics.median(ms):.2f} / {q[18]:.2f}"

    print(f"\nledger cost per shot (8 writes), {n_ledger} shots: mean / p50 / p95 ms")
    print(f"{'':28} {'PostgreSQL':>22} {'SQLite':>22}")
    print(f"{'ms per shot':28} {stats(pg_ms):>22} {stats(sq_ms):>22}")
    print(f"\n{n_shots} shots, fake ComfyUI rendering each in L = {render_s:g} s (one prompt at a time per server)")
    print(f"{'':28} {'one server own queue':>22} {f'{workers} Celery workers':>22} {'ideal (N x L / 4)':>22}")
    print(f"{'wall s':28} {one:>22.2f} {wall:>22.2f} {ideal:>22.2f}")
    print(f"{'x ideal':28} {one / ideal:>22.3f} {wall / ideal:>22.3f} {1:>22.3f}")
    print(f"{'servers used':28} {1:>22} {used:>22} {workers:>22}")
    print(f"goal: 4 workers <= 1.05x ideal: {'met' if wall / ideal <= 1.05 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
