"""The Luma emulator's Files API: presigned JSON uploads with a PUT back to the emulator, multipart
uploads, complete, get, cursor-paginated list and soft delete."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime, timezone
from pathlib import Path

from . import emulator_media as media

from .emulator_http import ApiError, _json_reply, _load_json, _parse_multipart, _Reply

_FILE_FIELDS = {"mime_type", "size_bytes", "expires_at", "filename", "purpose", "user_id"}

def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso(value: str, field: str) -> float:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ApiError(422, f"{field}: {value!r} is not an ISO 8601 timestamp") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class FilesApi:
    """The Files API routes (a mixin of LumaEmulator)."""

    def _create_file(self, key: str, headers, body) -> _Reply:
        ctype = (headers.get("Content-Type") or "").lower()
        now_wall = self._wall()
        if ctype.startswith("multipart/form-data"):
            form, blob = _parse_multipart(headers.get("Content-Type"), body)
            if blob is None:
                raise ApiError(422, "file: the multipart body needs a 'file' part.")
            data, part_type, part_name = blob
            if len(data) > self.inline_upload_max:
                raise ApiError(413, f"file: {len(data)} bytes is over the inline upload cap of "
                                    f"{self.inline_upload_max} bytes; use the presigned (JSON) flow.")
            meta = {"mime_type": form.get("mime_type") or part_type, "size_bytes": len(data),
                    "filename": form.get("filename") or part_name, "purpose": form.get("purpose"),
                    "user_id": form.get("user_id"), "expires_at": form.get("expires_at")}
            record = self._new_file(key, meta, now_wall)
            path = self._upload_dir / record["id"]
            path.write_bytes(data)
            with self._lock:
                record["path"], record["uploaded"] = path, True
            self._ingest(record)
            return _json_reply(201, {"id": record["id"], "state": "pending", "file": self._file_public(record), "upload": None})
        data = _load_json(body)
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        data = {k: v for k, v in data.items() if v is not None}
        self._unknown(data, _FILE_FIELDS, "")
        if not isinstance(data.get("mime_type"), str) or "/" not in data.get("mime_type", ""):
            raise ApiError(422, "mime_type: field required (e.g. image/png).")
        size = data.get("size_bytes")
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 5 * 1024 ** 3:
            raise ApiError(422, "size_bytes: field required, 1 byte to 5 GiB.")
        record = self._new_file(key, data, now_wall)
        token = uuid.uuid4().hex
        with self._lock:
            record["upload_token"] = token
            record["upload_expires"] = self.now() + self.upload_ttl_s
        upload = {"url": f"{self.url}/_uploads/{record['id']}?X-Amz-Signature={token}&X-Amz-Expires={int(self.upload_ttl_s)}",
                  "method": "PUT", "headers": {"Content-Type": record["mime_type"]},
                  "expires_at": _iso(now_wall + self.upload_ttl_s)}
        return _json_reply(201, {"id": record["id"], "state": "pending", "file": self._file_public(record), "upload": upload})

    def _new_file(self, key: str, meta: dict, now_wall: float) -> dict:
        purpose = meta.get("purpose") or "input"
        if purpose not in ("input", "reference"):
            raise ApiError(422, f"purpose: {purpose!r} is not one of input, reference.")
        for name in ("filename", "user_id"):
            if meta.get(name) is not None and not isinstance(meta[name], str):
                raise ApiError(422, f"{name}: must be a string.")
        expires = meta.get("expires_at")
        expires_ts = _parse_iso(expires, "expires_at") if expires else None
        with self._lock:
            self._file_seq += 1
            record = {"id": str(uuid.uuid4()), "key": key, "seq": self._file_seq, "created_at": _iso(now_wall),
                      "mime_type": meta["mime_type"], "purpose": purpose, "size_bytes": int(meta["size_bytes"]),
                      "state": "pending", "deleted_at": None, "expires_at": expires_ts, "failure_reason": None,
                      "filename": meta.get("filename"), "user_id": meta.get("user_id"), "path": None,
                      "uploaded": False, "completed": False, "ready_at": None, "outcome": None, "info": None}
            self._files[record["id"]] = record
        return record

    def _ingest(self, record: dict) -> None:
        """Decide the file's fate now (decode its bytes); it shows after ``file_ingest_s``."""
        try:
            if record["path"].stat().st_size != record["size_bytes"]:
                raise media.BadMedia(f"uploaded {record['path'].stat().st_size} bytes, declared size_bytes {record['size_bytes']}")
            info = media.probe_file(record["path"], record["mime_type"])
            outcome = ("ready", None)
        except media.BadMedia as e:
            info, outcome = None, ("failed", str(e))
        with self._lock:
            record.update(completed=True, info=info, outcome=outcome, ready_at=self.now() + self.file_ingest_s)

    def _refresh_file(self, f: dict) -> None:
        if f["state"] == "deleted":
            return
        if f["expires_at"] is not None and self._wall() >= f["expires_at"]:
            f["state"], f["deleted_at"] = "deleted", f["expires_at"]
        elif f["state"] == "pending" and f["completed"] and self.now() >= f["ready_at"]:
            f["state"], f["failure_reason"] = f["outcome"]

    def _file_public(self, f: dict) -> dict:
        with self._lock:
            self._refresh_file(f)
            return {"id": f["id"], "created_at": f["created_at"], "mime_type": f["mime_type"], "purpose": f["purpose"],
                    "size_bytes": f["size_bytes"], "state": f["state"],
                    "deleted_at": _iso(f["deleted_at"]) if f["deleted_at"] else None,
                    "expires_at": _iso(f["expires_at"]) if f["expires_at"] else None,
                    "failure_reason": f["failure_reason"], "filename": f["filename"], "user_id": f["user_id"]}

    def _own_file(self, key: str, file_id: str, *, where: str = "file_id", status: int = 404) -> dict:
        with self._lock:
            f = self._files.get(file_id)
            if f is None or f["key"] != key:
                raise ApiError(status, f"{where}: file {file_id} not found." if status != 404 else "File not found.")
            self._refresh_file(f)
            return f

    def _complete_file(self, key: str, file_id: str) -> dict:
        f = self._own_file(key, file_id)
        if f["state"] == "deleted":
            raise ApiError(404, "File not found.")
        if not f["uploaded"]:
            raise ApiError(400, f"file {file_id}: no bytes were uploaded yet; PUT them to upload.url first.")
        if not f["completed"]:
            self._ingest(f)
        return self._file_public(f)

    def _delete_file(self, key: str, file_id: str) -> None:
        f = self._own_file(key, file_id)
        with self._lock:
            if f["state"] != "deleted":
                f["state"], f["deleted_at"] = "deleted", self._wall()

    def _list_files(self, key: str, query: dict) -> dict:
        try:
            limit = int(query.get("limit", 25))
        except ValueError:
            raise ApiError(422, "limit: must be an integer 1..100.") from None
        if not 1 <= limit <= 100:
            raise ApiError(422, f"limit: {limit} is outside 1..100.")
        state, purpose = query.get("state"), query.get("purpose")
        if state is not None and state not in ("pending", "ready", "failed", "deleted"):
            raise ApiError(422, f"state: {state!r} is not a file state.")
        if purpose is not None and purpose not in ("input", "reference"):
            raise ApiError(422, f"purpose: {purpose!r} is not one of input, reference.")
        below = None
        if query.get("cursor"):
            try:
                below = int(base64.urlsafe_b64decode(query["cursor"].encode()).decode().removeprefix("seq:"))
            except (ValueError, binascii.Error):
                raise ApiError(422, "cursor: not a cursor this API returned.") from None
        with self._lock:
            mine = sorted((f for f in self._files.values() if f["key"] == key), key=lambda f: -f["seq"])
            for f in mine:
                self._refresh_file(f)
            picked = [f for f in mine
                      if (below is None or f["seq"] < below)
                      and (f["state"] == state if state else f["state"] != "deleted")
                      and (purpose is None or f["purpose"] == purpose)]
        page, more = picked[:limit], len(picked) > limit
        cursor = base64.urlsafe_b64encode(f"seq:{page[-1]['seq']}".encode()).decode() if more else None
        return {"data": [self._file_public(f) for f in page], "has_more": more, "next_cursor": cursor}

    def _receive_upload(self, rel: str, query: dict, headers, body) -> _Reply:
        segs = rel.split("/")
        with self._lock:
            f = self._files.get(segs[2]) if len(segs) == 3 else None
            if f is None or f.get("upload_token") is None:
                raise ApiError(404, "NoSuchUpload")
            if query.get("X-Amz-Signature") != f["upload_token"]:
                raise ApiError(403, "SignatureDoesNotMatch")
            if self.now() >= f["upload_expires"]:
                raise ApiError(403, "Request has expired")
            if f["completed"] or f["state"] == "deleted":
                raise ApiError(403, "The upload for this file is closed.")
        if (headers.get("Content-Type") or "").split(";")[0].strip().lower() != f["mime_type"].lower():
            raise ApiError(403, f"SignatureDoesNotMatch: send the Content-Type header {f['mime_type']!r} from upload.headers.")
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        if size != f["size_bytes"]:
            raise ApiError(403, f"SignatureDoesNotMatch: {size} bytes sent, size_bytes was {f['size_bytes']}.")
        path = self._upload_dir / f["id"]
        if isinstance(body, Path):
            body.replace(path)
        else:
            path.write_bytes(body)
        with self._lock:
            f["path"], f["uploaded"] = path, True
        return _Reply(200, b"", headers={"ETag": f'"{uuid.uuid4().hex}"'})
