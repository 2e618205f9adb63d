"""``director farm``: ``worker --comfy URL`` runs a Celery worker bound to one ComfyUI server;
``submit WORKFLOW.json [--shots FILE]`` queues shots (one per line/item of FILE, else the workflow as is)."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    farm = subparsers.add_parser("farm", help="render shots on many ComfyUI servers (Celery + Redis)")
    sub = farm.add_subparsers(dest="farm_cmd", required=True)
    w = sub.add_parser("worker", help="a worker that runs shots on one ComfyUI server")
    w.add_argument("--comfy", required=True, help="the ComfyUI server this worker feeds, e.g. http://127.0.0.1:8188")
    w.add_argument("--broker", help="Redis URL (default: $DIRECTOR_FARM_BROKER or redis://127.0.0.1:6379/0)")
    w.add_argument("--name", help="worker name (default: farm-<host>-<port of the ComfyUI>)")
    w.set_defaults(run=_worker)
    s = sub.add_parser("submit", help="queue shots of an API-format workflow")
    s.add_argument("workflow", help="API-format workflow JSON (ComfyUI: Export (API))")
    s.add_argument("--shots", help="JSON list, or JSON lines, of per-shot inputs: {node id: {input: value}} "
                                   "or {\"node.input\": value}; one shot each")
    s.add_argument("--broker", help="Redis URL (default: $DIRECTOR_FARM_BROKER or redis://127.0.0.1:6379/0)")
    s.add_argument("--wait", action="store_true", help="wait for every shot and print what each delivered")
    s.add_argument("--timeout", type=float, default=6 * 3600.0, help="seconds a shot may take (default 6 h)")
    s.set_defaults(run=_submit)


def read_shots(path: str | None) -> list[dict]:
    """The per-shot inputs from ``path`` (a JSON list, or one JSON object per line); [{}] without one."""
    from .comfy import FarmError

    if not path:
        return [{}]
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        shots = data if isinstance(data, list) else [data]
    except ValueError:
        try:
            shots = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
        except ValueError as e:
            raise FarmError(f"--shots {Path(path).name}: neither a JSON list nor JSON lines ({e}).",
                            field="shots") from None
    if not shots or not all(isinstance(s, dict) for s in shots):
        raise FarmError(f"--shots {Path(path).name}: each shot must be an object of inputs.", field="shots")
    return shots


def _worker(args) -> int:
    from .app import COMFY_ENV, QUEUE, make_app
    from .comfy import DirectorError, _http

    comfy = args.comfy.rstrip("/")
    try:
        if not comfy.startswith(("http://", "https://")):
            raise DirectorError(f"--comfy '{comfy}': give the ComfyUI server's URL, e.g. http://127.0.0.1:8188.")
        _http("GET", f"{comfy}/system_stats", timeout=10)  # a clear error now, not at the first shot
        app = make_app(args.broker)
    except DirectorError as e:
        print(f"director farm worker: {e}", file=sys.stderr)
        return 2
    os.environ[COMFY_ENV] = comfy
    port = comfy.rsplit(":", 1)[-1].strip("/")
    name = args.name or f"farm-{socket.gethostname()}-{port}"
    app.worker_main(["worker", "--pool=solo", "--concurrency=1", "-Q", QUEUE, "-n", f"{name}@%h",
                     "--without-gossip", "--without-mingle", "--loglevel=INFO"])
    return 0


def _submit(args) -> int:
    from .app import TASK, make_app
    from .comfy import DirectorError, load_workflow

    try:
        wf = load_workflow(Path(args.workflow).read_text(encoding="utf-8"), Path(args.workflow).name)
        shots = read_shots(args.shots)
    except (DirectorError, OSError) as e:
        print(f"director farm submit: {e}", file=sys.stderr)
        return 2
    try:
        app = make_app(args.broker)
    except DirectorError as e:
        print(f"director farm submit: {e}", file=sys.stderr)
        return 2
    results = []
    for i, inputs in enumerate(shots):
        res = app.send_task(TASK, args=[wf, inputs], kwargs={"shot": f"shot {i + 1}", "timeout_s": args.timeout})
        results.append(res)
        print(f"shot {i + 1}: task {res.id}")
    if not args.wait:
        return 0
    failed = 0
    t0 = time.monotonic()
    for i, res in enumerate(results):
        try:
            out = res.get(timeout=args.timeout, propagate=True)
        except Exception as e:  # noqa: BLE001 - reported per shot
            failed += 1
            print(f"shot {i + 1}: FAILED {type(e).__name__}: {e}")
            continue
        ok = out.get("status") == "success"
        failed += not ok
        print(f"shot {i + 1}: {out.get('status')} on {out.get('comfy')} · jobs {', '.join(out.get('jobs') or []) or '-'}"
              f" · {', '.join(out.get('outputs') or []) or 'no files'}")
        for m in out.get("messages") or []:
            if not ok:
                print(f"    {m}")
    print(f"{len(results) - failed}/{len(results)} shots delivered in {time.monotonic() - t0:.1f} s")
    return 1 if failed else 0
