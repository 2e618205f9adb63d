"""The Luma emulator's HTTP side: the loopback server, request bodies (JSON, multipart, spooled
uploads) and how a reply goes out (errors as ``{"detail": ...}``, dropped connections, files,
endless bodies and redirects for download faults)."""

from __future__ import annotations

import email.parser
import email.policy
import json
import shutil
import socket
import tempfile
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

API_VERSION = "2026-04-01"
BODY_MAX_BYTES = 96 * 1024 * 1024


class ApiError(Exception):
    """A synchronous error response: ``{"detail": detail}`` with ``status``."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict | None = None
    file: Path | None = None
    drop: bool = False
    endless: bool = False  # a body that never ends (no length; stops when the client hangs up)
    stall_s: float = 0.0  # send half the body, then stay silent this long


def _json_reply(status: int, obj: Any, headers: dict | None = None) -> _Reply:
    return _Reply(status, json.dumps(obj).encode(), headers=headers)


class _Server(ThreadingHTTPServer):
    """Loopback server sized for many jobs of one graph at once, quiet about the connections
    that faults drop on purpose."""

    request_queue_size = 128

    def handle_error(self, request, client_address):
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def _load_json(body) -> Any:
    raw = body.read_bytes() if isinstance(body, Path) else body
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.") from None


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict, tuple[bytes, str, str | None] | None]:
    """Form fields and the 'file' part (bytes, content type, filename) of a multipart body."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not msg.is_multipart():
        raise ApiError(400, "The multipart body could not be parsed.")
    form: dict[str, str] = {}
    blob = None
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            blob = (payload, part.get_content_type(), part.get_filename())
        elif name:
            form[name] = payload.decode("utf-8", "replace")
    return form, blob


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LumaEmulator/1"
    timeout = 30

    def log_message(self, *args) -> None:  # quiet: tests read emu.requests instead
        pass

    def _read_body(self, spool: bool) -> bytes | Path:
        length = self.headers.get("Content-Length")
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        emu = self.server.emulator  # type: ignore[attr-defined]  # the LumaEmulator
        if spool:
            out = Path(tempfile.mkstemp(dir=emu._upload_dir, suffix=".put")[1])
            with out.open("wb") as fh:
                for chunk in self._body_chunks(length, chunked):
                    fh.write(chunk)
            return out
        data = bytearray()
        for chunk in self._body_chunks(length, chunked):
            data += chunk
            if len(data) > BODY_MAX_BYTES:
                raise ApiError(413, "The request body is too large.")
        return bytes(data)

    def _body_chunks(self, length, chunked):
        if chunked:
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        remaining = int(length or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    def _serve(self, method: str) -> None:
        emu = self.server.emulator  # type: ignore[attr-defined]  # the LumaEmulator
        request_id = self.headers.get("X-Request-Id") or str(uuid.uuid4())
        spool = method == "PUT" and self.path.startswith("/_uploads/")
        try:
            body = self._read_body(spool)
            rel, reply = emu._handle(method, self.path, self.headers, body)
        except ApiError as e:
            rel, reply = urlsplit(self.path).path, _json_reply(e.status, {"detail": e.detail}, e.headers)
            self.close_connection = True
        finally:
            if spool and "body" in locals() and isinstance(body, Path):
                body.unlink(missing_ok=True)
        if not rel.startswith("/_emulator/"):
            emu._record(method, rel, reply.status)
        if reply.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if reply.endless:
            self._endless(reply)
            return
        size = reply.file.stat().st_size if reply.file is not None else len(reply.body)
        self.send_response(reply.status)
        self.send_header("X-Request-Id", request_id)
        self.send_header("X-API-Version", API_VERSION)
        for k, v in (reply.headers or {}).items():
            self.send_header(k, v)
        if reply.status != 204:
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if method == "HEAD" or reply.status == 204:
            return
        if reply.file is not None:
            with reply.file.open("rb") as fh:
                shutil.copyfileobj(fh, self.wfile, 1 << 20)
        elif reply.stall_s:
            half = len(reply.body) // 2
            self.wfile.write(reply.body[:half])
            self.wfile.flush()
            import time

            time.sleep(reply.stall_s)
            self.wfile.write(reply.body[half:])
        else:
            self.wfile.write(reply.body)

    def _endless(self, reply) -> None:
        """200 and MP4-looking bytes until the client hangs up (at most 512 MiB)."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        piece = b"\x00\x00\x00\x18ftypmp42" + bytes(1 << 16)
        emu = self.server.emulator  # type: ignore[attr-defined]
        try:
            for _ in range((512 << 20) // len(piece)):
                self.wfile.write(piece)
                with emu._lock:
                    emu.endless_bytes += len(piece)
        except OSError:
            pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_HEAD(self):
        self._serve("HEAD")

    def do_DELETE(self):
        self._serve("DELETE")

    def do_PATCH(self):
        self._serve("PATCH")
