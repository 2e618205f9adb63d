"""Start a real ComfyUI (from $COMFYUI_DIR) with this pack, queue API workflows, read results.

Used by tests marked ``comfyui``. Everything lives in a temporary base directory, so the
ComfyUI work tree is never written to. Interpreter: $COMFY_PYTHON, else ComfyUI's neighbouring
venv, else this Python.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[1]


def _python(comfy_dir: Path) -> str:
    if os.environ.get("COMFY_PYTHON"):
        return os.environ["COMFY_PYTHON"]
    for cand in (comfy_dir.parent / "venv", comfy_dir / "venv", comfy_dir / ".venv"):
        if (cand / "bin" / "python").exists():
            return str(cand / "bin" / "python")
    return sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, comfy_dir: str, base: Path, env: dict | None = None, extra_args: tuple[str, ...] = (),
                 cpu: bool = True):
        self.comfy_dir = Path(comfy_dir)
        self.cpu = cpu  # False: let ComfyUI use the GPU (bench/bench_local.py --full)
        self.extra_args = list(extra_args)
        self.base = Path(base)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log = self.base / "comfyui.log"

    def start(self, timeout: float = 240) -> "ComfyServer":
        for d in ("custom_nodes", "input", "output", "temp", "user", "models"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        link = self.base / "custom_nodes" / "comfyui-director"
        if not link.exists():
            link.symlink_to(PACK_ROOT, target_is_directory=True)
        cmd = [_python(self.comfy_dir), "main.py", *(["--cpu"] if self.cpu else []),
               "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base), "--database-url", f"sqlite:///{self.base}/user/comfyui.db",
               "--disable-auto-launch", "--log-stdout", *self.extra_args]
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(cmd, cwd=self.comfy_dir, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
                                     env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited early:\n{self.log.read_text()[-4000:]}")
            try:
                self.get("/object_info/DirectorLoadVideo")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise RuntimeError(f"ComfyUI did not answer in {timeout} s:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def run_prompt(self, prompt: dict, timeout: float = 600) -> dict:
        """Queue an API-format prompt and wait for its history entry (status + outputs)."""
        status, body = self.post("/prompt", {"prompt": prompt, "client_id": uuid.uuid4().hex})
        if status != 200:
            raise AssertionError(f"prompt rejected ({status}): {json.dumps(body)[:3000]}")
        pid = body["prompt_id"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            hist = self.get(f"/history/{pid}")
            if pid in hist and hist[pid].get("status", {}).get("completed") is not None:
                entry = hist[pid]
                if entry["status"].get("status_str") in ("success", "error"):
                    return entry
            time.sleep(0.5)
        raise TimeoutError(f"prompt {pid} did not finish in {timeout} s")

    def import_failed(self) -> bool:
        """True when ComfyUI's start-up table reports this pack as IMPORT FAILED."""
        lines = self.log.read_text(errors="replace").splitlines()
        return any("IMPORT FAILED" in ln and "comfyui-director" in ln for ln in lines)
