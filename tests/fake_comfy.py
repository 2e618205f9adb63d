"""A small stand-in for a ComfyUI server on loopback, for farm tests and the farm benchmark: it
answers ``/prompt``, ``/history``, ``/system_stats`` and ``/ws`` like ComfyUI and runs ONE prompt at a
time (as ComfyUI does), each taking ``render_s`` seconds, writing one file into its output folder.
It is not ComfyUI: the tests marked ``comfyui`` use the real one."""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import socket
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B65"


class FakeComfy:
    def __init__(self, output: Path, render_s: float = 0.5):
        self.output = Path(output)
        self.output.mkdir(parents=True, exist_ok=True)
        self.render_s = float(render_s)
        self.history: dict[str, dict] = {}
        self.prompts: list[dict] = []
        self._queue: queue.Queue = queue.Queue()
        self._sockets: dict[str, socket.socket] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeComfy":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _json(self, status: int, obj) -> None:
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.startswith("/ws"):
                    return fake._ws(self)
                if self.path == "/system_stats":
                    return self._json(200, {"system": {"comfyui_version": "fake"}, "devices": []})
                if self.path.startswith("/history/"):
                    pid = self.path.rsplit("/", 1)[1]
                    with fake._lock:
                        entry = fake.history.get(pid)
                    return self._json(200, {pid: entry} if entry else {})
                return self._json(404, {"error": "not found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path != "/prompt":
                    return self._json(404, {"error": "not found"})
                pid = str(uuid.uuid4())
                with fake._lock:
                    fake.prompts.append(body)
                fake._queue.put((pid, body))
                return self._json(200, {"prompt_id": pid, "number": len(fake.prompts), "node_errors": {}})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._queue.put(None)
        self._server.shutdown()
        self._server.server_close()

    # --- the one-at-a-time executor ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            pid, body = item
            client = body.get("client_id", "")
            self._send(client, {"type": "execution_start", "data": {"prompt_id": pid}})
            time.sleep(self.render_s)
            name = f"shot_{pid[:8]}.txt"
            (self.output / name).write_text(json.dumps(body.get("prompt", {}), sort_keys=True))
            entry = {"prompt": [0, pid, body.get("prompt", {}), {}, []],
                     "outputs": {"9": {"text": [f"fake render · job fake-{pid[:12]}"],
                                       "files": [{"filename": name, "subfolder": "", "type": "output"}]}},
                     "status": {"status_str": "success", "completed": True, "messages": []}}
            with self._lock:
                self.history[pid] = entry
            self._send(client, {"type": "executing", "data": {"node": None, "prompt_id": pid}})

    # --- /ws ----------------------------------------------------------------------------------------
    def _ws(self, handler: BaseHTTPRequestHandler) -> None:
        key = handler.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        handler.send_response(101)
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", accept)
        handler.end_headers()
        handler.wfile.flush()
        client = handler.path.partition("clientId=")[2] or uuid.uuid4().hex
        sock = handler.connection
        with self._lock:
            self._sockets[client] = sock
        self._send(client, {"type": "status", "data": {"sid": client}})
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.pop(client, None)
            handler.close_connection = True

    def _send(self, client: str, msg: dict) -> None:
        with self._lock:
            sock = self._sockets.get(client)
        if sock is None:
            return
        data = json.dumps(msg).encode()
        head = bytes([0x81, len(data)]) if len(data) < 126 else bytes([0x81, 126]) + struct.pack(">H", len(data))
        try:
            sock.sendall(head + data)
        except OSError:
            pass
