"""Talking to the Luma Agents API without ever paying twice, on the official ``luma-agents`` client.

Money rule: ``POST /generations`` has no idempotency key, so a request that may have reached
Luma is never sent again. Job creation runs with the client's retries OFF and is retried here
only when the answer proves no job was made: 429 (after a job slot frees, or after its
``Retry-After``) and 503 "ingestion unavailable"; any other 4xx is a refusal (no job, not
retried). A 502/504 (a gateway can answer one after the backend made the job), another 5xx, a
reset or a timeout after the body was sent raises :class:`LumaUncertain` and is not repeated. A
connection that could not even be opened is :class:`LumaUnavailable` (nothing was sent).

Polls (``GET /generations/{id}``) and Files API calls are safe to repeat and use the client's
own retries. Presigned uploads (PUT) and result downloads are plain URLs, streamed with httpx
between the network and a file on disk in 1 MiB pieces (never a whole file in memory), and the
API key is never sent to them. Downloads are bounded (:meth:`LumaTransport.download`): https only
(plain http only on loopback, for the emulator), redirects followed by hand under the same rule
and never to another loopback host, a byte cap, a stall limit and an overall deadline.

Every message raised from here is passed through :func:`keys.redact`.
"""

from __future__ import annotations

import asyncio
import email.utils
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from ...common.errors import Cancelled, DirectorError
from ...common.progress import CancelFn, never_cancelled
from .keys import SecretKey, redact

CHUNK = 1 << 20
REQUIRED = "luma-agents>=0.5,<0.6"


class LumaError(DirectorError):
    """A Luma call failed; the message is complete, plain and free of secrets."""


class LumaRejected(LumaError):
    """Luma refused the request with a 4xx answer: no job was created, nothing billed."""

    def __init__(self, message: str, *, status: int, field: str | None = None):
        super().__init__(message, field=field)
        self.status = status


class LumaUnavailable(LumaError):
    """Luma could not be reached or stayed busy (429/502/503); ``status`` is the HTTP code, if any."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class LumaUncertain(LumaError):
    """The job request may have reached Luma (and be billed); it was not repeated."""


class LumaNotFound(LumaError):
    """Luma does not know this job or file (expired, or made with another key)."""


class LumaTooLarge(LumaError):
    """A download went past the shot's byte cap (the server sent far more than such a shot can be)."""


class LumaLinkRefused(LumaError):
    """A result link answered 401/403/404/410 (expired or revoked signature). The job itself may be
    fine: ask Luma for the job again to get freshly signed links."""


def _client_module():
    try:
        import luma_agents
    except ImportError:
        raise DirectorError(f"Luma engine: the Luma client is not installed; pip install '{REQUIRED}'.") from None
    major_minor = tuple(int(x) for x in luma_agents.__version__.split(".")[:2])
    if major_minor != (0, 5):
        raise DirectorError(f"Luma engine: luma-agents {luma_agents.__version__} is installed; "
                            f"Director needs {REQUIRED}.")
    return luma_agents


_SSL = None
_SSL_LOCK = threading.Lock()


def _ssl_context():
    """One TLS context for the process (loading the CA bundle costs ~30 ms; every render needs it)."""
    global _SSL
    with _SSL_LOCK:
        if _SSL is None:
            import httpx

            _SSL = httpx.create_ssl_context()
        return _SSL


def _retry_after(headers: Any, default: float) -> float:
    """Seconds from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``."""
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
        raw = headers.get("retry-after")
    except AttributeError:
        return default
    if raw is None:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        return max(0.0, email.utils.mktime_tz(parsed) - time.time()) if parsed else default


def _detail(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        d = body.get("detail", body.get("message", body))
        if isinstance(d, list):  # validation errors: [{"loc": [...], "msg": ...}, ...]
            d = "; ".join(str(x.get("msg", x)) if isinstance(x, dict) else str(x) for x in d)
        return str(d)
    return str(body) if body else str(getattr(err, "message", err))


async def sleep_or_cancel(seconds: float, cancelled: CancelFn, *, step: float = 0.1) -> None:
    """Sleep ``seconds`` in short steps, raising :class:`Cancelled` as soon as ``cancelled()``."""
    end = time.monotonic() + max(0.0, seconds)
    while True:
        if cancelled():
            raise Cancelled("Interrupted by the user.")
        left = end - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(step, left))


async def until_cancelled(coro, cancelled: CancelFn, *, step: float = 0.1):
    """Await ``coro`` but give up (cancelling it) within ``step`` s of ``cancelled()``."""
    task = asyncio.ensure_future(coro)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=step)
            if done:
                return task.result()
            if cancelled():
                task.cancel()
                raise Cancelled("Interrupted by the user.")
    except BaseException:
        if not task.done():
            task.cancel()
        raise


class LumaTransport:
    """One connection set to Luma for one render: ``async with LumaTransport(key, url) as t``.

    A new one per render keeps httpx's connections on the event loop that uses them (ComfyUI
    runs each prompt in its own loop).
    """

    def __init__(self, key: SecretKey, base_url: str, *, timeout_s: float = 60.0, read_retries: int = 2,
                 busy_retries: int = 5, retry_base_s: float = 1.0, max_rate_wait_s: float = 900.0,
                 user_id: str | None = None, on_request: Callable[[str], None] | None = None,
                 base_url_source: str = ""):
        self.key = key
        self.base_url = base_url
        self.base_url_source = base_url_source
        self.timeout_s = float(timeout_s)
        self.read_retries = int(read_retries)
        self.busy_retries = int(busy_retries)
        self.retry_base_s = float(retry_base_s)
        self.max_rate_wait_s = float(max_rate_wait_s)
        self.user_id = user_id or None
        self.on_request = on_request or (lambda what: None)
        self.client = None
        self.plain = None

    async def __aenter__(self) -> "LumaTransport":
        luma_agents = _client_module()
        import httpx

        timeout = httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
        api_http = luma_agents.DefaultAsyncHttpxClient(timeout=timeout, verify=_ssl_context())
        self.client = luma_agents.AsyncLuma(auth_token=self.key.reveal(), base_url=self.base_url, timeout=timeout,
                                            max_retries=self.read_retries, http_client=api_http)
        self.plain = httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=_ssl_context())
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            if self.plain is not None:
                await self.plain.aclose()
        finally:
            if self.client is not None:
                await self.client.close()

    def redact(self, text: object) -> str:
        return redact(text, self.key)

    # --- job creation (never repeated once it may have reached Luma) ----------------------------
    async def create_generation(self, body: dict[str, Any], *, cancelled: CancelFn = never_cancelled,
                                status: Callable[[str], None] = lambda t: None,
                                on_busy: Callable[[], Awaitable[bool]] | None = None):
        """Create one job; return the client's ``Generation``. See the module docstring for retries.

        On a 429 that is not the requests-per-minute limit, ``on_busy`` is awaited first: True means
        it waited until a job slot freed (the concurrent-job limit), so the request goes again at
        once; False falls back to waiting for ``Retry-After``."""
        import httpx
        from luma_agents import APIConnectionError, APIStatusError

        creator = self.client.with_options(max_retries=0)
        busy = 0
        rate_waited = 0.0
        while True:
            try:
                self.on_request("POST /generations")
                return await creator.generations.create(**body)
            except APIStatusError as e:
                code = e.status_code
                detail = self.redact(_detail(e))
                if code == 429:
                    per_minute = str(e.response.headers.get("x-ratelimit-remaining", "")).strip() == "0"
                    if on_busy is not None and not per_minute and await on_busy():
                        continue
                    wait = min(_retry_after(e.response.headers, 5.0), 120.0)
                    if rate_waited + wait > self.max_rate_wait_s:
                        raise LumaUnavailable(
                            f"Luma kept refusing new jobs for {rate_waited:.0f} s (429: {detail}); no job was "
                            "created. Lower 'max concurrent jobs' or wait for running jobs to finish.") from None
                    rate_waited += wait
                    status(f"Luma is at its job limit; retrying in {wait:.0f} s (no job created yet)")
                    await sleep_or_cancel(wait, cancelled)
                    continue
                if code == 503 and "ingestion" in detail.lower():  # Luma's own "no job": retry
                    if busy >= self.busy_retries:
                        raise LumaUnavailable(
                            f"Luma is unavailable ({code}: {detail}) after {busy + 1} tries; no job was created. "
                            "Queue the graph again later.") from None
                    wait = _retry_after(e.response.headers, self.retry_base_s * 2 ** busy)
                    busy += 1
                    status(f"Luma unavailable ({code}); retrying in {wait:.0f} s (no job created yet)")
                    await sleep_or_cancel(wait, cancelled)
                    continue
                if 400 <= code < 500 and code not in (408,):
                    raise LumaRejected(self._rejection(code, detail, body), status=code) from None
                raise LumaUncertain(self._uncertain(f"Luma answered {code} ({detail})")) from None
            except APIConnectionError as e:
                cause = e.__cause__
                if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout)):
                    raise LumaUnavailable(
                        f"Luma engine: cannot connect to {self.base_url}{self._from()} "
                        f"({self.redact(cause) or type(cause).__name__}); nothing was sent and no job was created.") from None
                what = "timed out" if isinstance(cause, httpx.TimeoutException) else "lost its connection"
                raise LumaUncertain(self._uncertain(f"the job request {what}")) from None

    def _from(self) -> str:
        return f" (the base URL from {self.base_url_source})" if self.base_url_source else ""

    @staticmethod
    def _uncertain(what: str) -> str:
        return (f"Luma engine: {what} after it was sent, so the request may have reached Luma and created a "
                "billed job. It was not repeated (Luma has no way to send a job twice safely).")

    @staticmethod
    def _rejection(code: int, detail: str, body: dict[str, Any]) -> str:
        tail = " No job was created; nothing was billed."
        if code == 401:
            return ("Luma engine: the API key was refused (401). Check LUMA_AGENTS_API_KEY or the key file "
                    "<ComfyUI user folder>/director/luma_api_key." + tail)
        if code == 402:
            return f"Luma engine: the Luma account has too little credit for this job (402: {detail}). " \
                   "Add credits at platform.lumalabs.ai." + tail
        if code == 403:
            hdr = " HDR and EXR need HDR access on your Luma plan." if (body.get("video") or {}).get("hdr") else ""
            return f"Luma engine: access denied (403: {detail}).{hdr}" + tail
        if code == 413:
            return f"Luma engine: an input is too large for Luma (413: {detail})." + tail
        if code in (400, 422):
            return f"Luma engine: Luma refused this combination of options ({code}: {detail})." + tail
        return f"Luma engine: Luma refused the job ({code}: {detail})." + tail

    # --- polling ------------------------------------------------------------------------------
    async def get_generation(self, generation_id: str):
        """The job's current state (client retries on). Raises LumaNotFound / LumaRejected /
        LumaUnavailable with clean messages."""
        from luma_agents import APIConnectionError, APIStatusError

        try:
            self.on_request("GET /generations")
            return await self.client.generations.get(generation_id)
        except APIStatusError as e:
            detail = self.redact(_detail(e))
            if e.status_code == 404:
                raise LumaNotFound(f"Luma does not know job {generation_id} (404: {detail}); it may have "
                                   "expired or belong to another API key.") from None
            if e.status_code in (401, 403):
                raise LumaRejected(f"Luma refused to show job {generation_id} ({e.status_code}: {detail}).",
                                   status=e.status_code) from None
            raise LumaUnavailable(f"Luma could not report job {generation_id} ({e.status_code}: {detail}).") from None
        except APIConnectionError as e:
            raise LumaUnavailable(f"Luma could not be reached at {self.base_url}{self._from()} while checking job {generation_id} "
                                  f"({self.redact(e.__cause__ or e)}).") from None

    # --- files --------------------------------------------------------------------------------
    async def upload_file(self, path: Path, mime_type: str, *, purpose: str = "input",
                          cancelled: CancelFn = never_cancelled, ready_timeout_s: float = 300.0) -> str:
        """Upload ``path`` through the presigned flow and return its ``file_id`` once ``ready``.

        files.create(mime_type, size_bytes) -> PUT the bytes (streamed from disk) -> files.complete
        -> poll files.get until ``ready``. Raises LumaUnavailable carrying ``status`` 503 when the
        Files API is down (the caller may fall back to inline base64 for small images).
        """
        from luma_agents import APIConnectionError, APIStatusError

        path = Path(path)
        size = path.stat().st_size
        try:
            self.on_request("POST /files")
            extra = {"user_id": self.user_id} if self.user_id else {}
            created = await self.client.files.create(mime_type=mime_type, size_bytes=size, filename=path.name,
                                                     purpose=purpose, **extra)
            if created.upload is None:
                raise LumaError("Luma engine: Luma did not offer an upload address for the file.")
            await self._put(path, size, created.upload.url, dict(created.upload.headers or {}), cancelled)
            self.on_request("POST /files/complete")
            f = await self.client.files.complete(created.id)
            deadline = time.monotonic() + ready_timeout_s
            while f.state == "pending":
                if time.monotonic() > deadline:
                    raise LumaUnavailable(f"Luma did not accept the uploaded {path.name} within "
                                          f"{ready_timeout_s:.0f} s.")
                await sleep_or_cancel(0.25, cancelled)
                self.on_request("GET /files")
                f = await self.client.files.get(created.id)
            if f.state != "ready":
                reason = self.redact(f.failure_reason or f.state)
                raise LumaRejected(f"Luma refused the uploaded image {path.name}: {reason}.", status=422)
            return f.id
        except APIStatusError as e:
            detail = self.redact(_detail(e))
            if e.status_code in (502, 503):
                raise LumaUnavailable(f"Luma's file upload is unavailable ({e.status_code}: {detail}).",
                                      status=e.status_code) from None
            if 400 <= e.status_code < 500:
                raise LumaRejected(self._rejection(e.status_code, detail, {}), status=e.status_code) from None
            raise LumaUnavailable(f"Luma's file upload failed ({e.status_code}: {detail}).") from None
        except APIConnectionError as e:
            raise LumaUnavailable(f"Luma could not be reached at {self.base_url}{self._from()} while uploading {path.name} "
                                  f"({self.redact(e.__cause__ or e)}).") from None

    async def _put(self, path: Path, size: int, url: str, headers: dict[str, str], cancelled: CancelFn,
                   tries: int = 3) -> None:
        """Stream ``path`` to a presigned URL (no API key), retrying whole PUTs: a PUT is idempotent."""
        import httpx

        headers = {**headers, "Content-Length": str(size)}

        async def body():
            with open(path, "rb") as fh:
                while True:
                    if cancelled():
                        raise Cancelled("Interrupted by the user.")
                    piece = await asyncio.to_thread(fh.read, CHUNK)
                    if not piece:
                        return
                    yield piece

        for attempt in range(tries):
            try:
                self.on_request("PUT upload")
                r = await self.plain.put(url, content=body(), headers=headers)
            except httpx.TransportError as e:
                if attempt + 1 >= tries:
                    raise LumaUnavailable(f"Uploading {path.name} failed: {self.redact(e) or type(e).__name__}.") from None
                await sleep_or_cancel(self.retry_base_s * 2 ** attempt, cancelled)
                continue
            if r.status_code < 300:
                return
            if r.status_code >= 500 and attempt + 1 < tries:
                await sleep_or_cancel(self.retry_base_s * 2 ** attempt, cancelled)
                continue
            raise LumaUnavailable(f"Uploading {path.name} failed: the upload address answered {r.status_code}.")

    async def download(self, url: str, dest: Path, *, cancelled: CancelFn = never_cancelled, tries: int = 3,
                       max_bytes: int | None = None, deadline_s: float | None = None, max_redirects: int = 5) -> int:
        """Stream ``url`` into ``dest`` (a temporary name the caller renames); return its size.

        Bounded: every hop must pass :func:`download_url_problem` (redirects are followed here, by
        hand, never with the key); more than ``max_bytes`` raises LumaTooLarge at once (not retried);
        a read that stalls longer than the transport's timeout, or a whole download past ``deadline_s``,
        fails this try (retried ``tries`` times, then LumaUnavailable)."""
        import httpx

        attempt = 0
        while True:
            try:
                self.on_request("GET download")
                coro = self._download_once(url, dest, cancelled, max_bytes, max_redirects)
                if deadline_s is None:
                    return await coro
                try:
                    return await asyncio.wait_for(coro, deadline_s)
                except asyncio.TimeoutError:
                    raise LumaUnavailable(f"the download did not finish within its deadline of {deadline_s:g} s") \
                        from None
            except (httpx.TransportError, httpx.HTTPStatusError, LumaUnavailable) as e:
                attempt += 1
                if attempt >= tries:
                    what = self.redact(e) or type(e).__name__
                    raise LumaUnavailable(f"Downloading Luma's result failed: {what.rstrip('.')}.") from None
                await sleep_or_cancel(self.retry_base_s * 2 ** (attempt - 1), cancelled)

    async def _download_once(self, url: str, dest: Path, cancelled: CancelFn, max_bytes: int | None,
                             max_redirects: int) -> int:
        import httpx

        first = url
        for _ in range(max_redirects + 1):
            problem = download_url_problem(url, first)
            if problem:
                raise LumaLinkRefused(f"Luma's result link was not followed: {problem}")
            async with self.plain.stream("GET", url) as r:
                if r.status_code in (301, 302, 303, 307, 308) and r.headers.get("location"):
                    url = str(r.url.join(r.headers["location"]))
                    continue
                if r.status_code in (401, 403, 404, 410):
                    raise LumaLinkRefused(f"Luma's result link was refused ({r.status_code}); links expire "
                                          "1 h after they are signed.")
                if r.status_code >= 300:
                    raise httpx.HTTPStatusError(f"{r.status_code}", request=r.request, response=r)
                declared = r.headers.get("content-length", "")
                if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise LumaTooLarge(_too_large(int(declared), max_bytes, "announces"))
                size = 0
                with open(dest, "wb") as fh:
                    async for piece in r.aiter_bytes(CHUNK):
                        if cancelled():
                            raise Cancelled("Interrupted by the user.")
                        size += len(piece)
                        if max_bytes is not None and size > max_bytes:
                            raise LumaTooLarge(_too_large(size, max_bytes, "sent"))
                        await asyncio.to_thread(fh.write, piece)
                return size
        raise LumaLinkRefused(f"Luma's result link redirected more than {max_redirects} times.")


def _too_large(size: int, cap: int, verb: str) -> str:
    return (f"the result link {verb} {size / 2**20:.0f} MiB or more, over this shot's cap of {cap / 2**20:.0f} MiB "
            "(frames x pixels x a generous factor); the download was stopped")


def download_url_problem(url: str, first: str) -> str | None:
    """Why ``url`` (reached from the result link ``first``) must not be fetched, or None: https only,
    plain http only on loopback (the emulator), and a redirect never leaves the loopback host it
    started on for another one."""
    from urllib.parse import urlsplit

    from .keys import is_loopback

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return f"it is not an https link ({scheme or 'no scheme'})"
    if scheme == "http" and not is_loopback(url):
        return "it is plain http to another machine (https only)"
    if is_loopback(first) and url != first:
        start = urlsplit(first)
        if (parts.hostname, parts.port) != (start.hostname, start.port) and (is_loopback(url) or scheme == "http"):
            return f"it redirects to another host ({parts.hostname})"
    return None
