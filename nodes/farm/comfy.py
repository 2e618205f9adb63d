"""One ComfyUI server as the farm uses it: put a shot's inputs into an API-format workflow, queue it
on ``/prompt``, follow ``/ws`` until it ends (``/history`` as the fallback and the final word), and read
what it wrote (output files) and which paid jobs it used (Luma job ids). Standard library only."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import socket
import struct
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..common.errors import DirectorError

JOB_ID = re.compile(r"\bjob ([0-9A-Za-z][0-9A-Za-z_-]{5,})")


class FarmError(DirectorError):
    """A shot the farm could not run (bad workflow or inputs, ComfyUI refused or failed it)."""


@dataclass
class ShotRun:
    """What one shot did on one server."""

    comfy: str
    prompt_id: str
    status: str  # "success" | "error"
    outputs: list[str] = field(default_factory=list)  # "<type>/<subfolder>/<filename>" as ComfyUI names them
    jobs: list[str] = field(default_factory=list)  # paid job ids the shot used (Luma)
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"comfy": self.comfy, "prompt_id": self.prompt_id, "status": self.status, "outputs": self.outputs,
                "jobs": self.jobs, "messages": self.messages, "seconds": round(self.seconds, 3)}


def load_workflow(text: str, name: str = "workflow") -> dict[str, Any]:
    """An API-format workflow ({node id: {"class_type", "inputs"}}), or FarmError naming what is wrong."""
    try:
        wf = json.loads(text)
    except ValueError as e:
        raise FarmError(f"{name}: not JSON ({e}).", field="workflow") from None
    if isinstance(wf, dict) and "prompt" in wf and isinstance(wf["prompt"], dict):
        wf = wf["prompt"]  # a saved /prompt body
    if isinstance(wf, dict) and "nodes" in wf and "links" in wf:
        raise FarmError(f"{name}: this is a UI workflow; export it with 'Export (API)' in ComfyUI.", field="workflow")
    if not isinstance(wf, dict) or not wf or not all(isinstance(v, dict) and "class_type" in v for v in wf.values()):
        raise FarmError(f"{name}: not an API-format workflow (node id -> class_type and inputs).", field="workflow")
    return wf


def apply_inputs(workflow: dict[str, Any], inputs: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of ``workflow`` with ``inputs`` set: ``{node id: {input: value}}`` or ``{"node.input": value}``."""
    wf = copy.deepcopy(workflow)
    for key, value in (inputs or {}).items():
        if isinstance(value, dict) and str(key) in wf:
            pairs = [(str(key), k, v) for k, v in value.items()]
        else:
            node, sep, name = str(key).partition(".")
            if not sep:
                raise FarmError(f"shot input '{key}': use {{node id: {{input: value}}}} or 'node.input'.",
                                field="inputs")
            pairs = [(node, name, value)]
        for node, name, v in pairs:
            if node not in wf:
                raise FarmError(f"shot input '{node}.{name}': the workflow has no node '{node}'.", field="inputs")
            wf[node].setdefault("inputs", {})[name] = v
    return wf


def _http(method: str, url: str, body: Any = None, timeout: float = 30.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        detail = e.read()[:4000].decode(errors="replace")
        raise FarmError(f"ComfyUI at {url} answered {e.code}: {detail}", field="comfy") from None
    except (urllib.error.URLError, OSError) as e:
        raise FarmError(f"ComfyUI at {url} cannot be reached: {getattr(e, 'reason', e)}", field="comfy") from None


class _Socket:
    """A minimal WebSocket client (RFC 6455, text frames in, pongs out) for ComfyUI's ``/ws``."""

    def __init__(self, base: str, client_id: str, timeout: float = 10.0):
        parts = urlsplit(base)
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = (parts.path.rstrip("/") or "") + f"/ws?clientId={client_id}"
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("the WebSocket handshake was cut off")
            head += chunk
        head, _, self.buf = head.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise OSError("no WebSocket upgrade")

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("the WebSocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self, timeout: float) -> dict | None:
        """The next JSON message, or None when none came within ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            while True:
                b0, b1 = self._read(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack(">H", self._read(2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", self._read(8))[0]
                mask = self._read(4) if b1 & 0x80 else b""
                payload = self._read(n)
                if mask:
                    payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
                op = b0 & 0x0F
                if op == 0x8:
                    raise OSError("the WebSocket closed")
                if op == 0x9:
                    self._send(0xA, payload)
                elif op == 0x1:
                    try:
                        return json.loads(payload)
                    except ValueError:
                        continue
                # binary frames (previews) and pongs are skipped
        except socket.timeout:
            return None

    def _send(self, op: int, payload: bytes) -> None:
        mask = os.urandom(4)
        head = bytes([0x80 | op, 0x80 | len(payload)]) if len(payload) < 126 else \
            bytes([0x80 | op, 0x80 | 126]) + struct.pack(">H", len(payload))
        self.sock.sendall(head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def run_shot(comfy: str, workflow: dict[str, Any], *, timeout_s: float = 6 * 3600.0, check_s: float = 2.0) -> ShotRun:
    """Queue ``workflow`` on the ComfyUI at ``comfy`` and follow it to its end. ``/ws`` says when it ends;
    ``/history`` is read then (and every ``check_s`` without news, so a missed message costs little)."""
    base = comfy.rstrip("/")
    client_id = uuid.uuid4().hex
    started = time.monotonic()
    ws = None
    try:
        ws = _Socket(base, client_id)
    except OSError:
        ws = None  # no WebSocket: /history alone
    try:
        queued = _http("POST", f"{base}/prompt", {"prompt": workflow, "client_id": client_id})
        pid = queued.get("prompt_id")
        if not pid:
            raise FarmError(f"ComfyUI at {base} queued nothing: {json.dumps(queued)[:2000]}", field="comfy")
        while True:
            if time.monotonic() - started > timeout_s:
                raise FarmError(f"shot {pid} on {base} did not end within {timeout_s:.0f} s", field="comfy")
            ended = False
            if ws is not None:
                try:
                    msg = ws.recv(check_s)
                except OSError:
                    ws.close()
                    ws, msg = None, None
                if msg is not None:
                    kind, data = msg.get("type"), msg.get("data") or {}
                    if data.get("prompt_id") != pid:
                        continue
                    ended = kind in ("execution_success", "execution_error", "execution_interrupted") or (
                        kind == "executing" and data.get("node") is None)
                    if not ended:
                        continue
            else:
                time.sleep(min(check_s, 0.25))
            entry = _http("GET", f"{base}/history/{pid}").get(pid)
            if entry and entry.get("status", {}).get("completed") is not None or (
                    entry and entry.get("status", {}).get("status_str") in ("success", "error")):
                return _result(base, pid, entry, time.monotonic() - started)
            if ended:
                time.sleep(0.02)  # the history entry lands just after the last message
    finally:
        if ws is not None:
            ws.close()


def _result(base: str, pid: str, entry: dict, seconds: float) -> ShotRun:
    status = entry.get("status", {}).get("status_str") or ("success" if entry.get("status", {}).get("completed")
                                                           else "error")
    run = ShotRun(base, pid, status, seconds=seconds)
    for out in (entry.get("outputs") or {}).values():
        for kind, items in out.items():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and item.get("filename"):
                    parts = [item.get("type") or "output", item.get("subfolder") or "", item["filename"]]
                    path = "/".join(p for p in parts if p)
                    if path not in run.outputs:
                        run.outputs.append(path)
                elif isinstance(item, str) and kind == "text":
                    run.messages.append(item)
                    run.jobs.extend(j for j in JOB_ID.findall(item) if j not in run.jobs)
    for name, data in entry.get("status", {}).get("messages") or []:
        if name == "execution_error":
            run.messages.append(f"{data.get('node_type', 'node')} {data.get('node_id', '')}: "
                                f"{data.get('exception_message', '').strip()}")
            run.jobs.extend(j for j in JOB_ID.findall(data.get("exception_message", "")) if j not in run.jobs)
    return run
