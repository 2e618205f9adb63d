"""The official ``luma_agents`` client, unchanged, against the local Luma emulator.

If the emulator drifted from the real API's paths, bodies or headers, these calls would fail
inside the client (wrong path -> NotFoundError, wrong shape -> pydantic errors).
"""

from __future__ import annotations

import asyncio
import io
import time

import av
import httpx
import numpy as np
import pytest
from PIL import Image

luma_agents = pytest.importorskip("luma_agents")

from comfyui_director.nodes.engines.luma.emulator import Fault, LumaEmulator  # noqa: E402

KEY = "test-key"
VIDEO_360 = {"resolution": "360p", "duration": "5s"}


@pytest.fixture
def emu():
    with LumaEmulator({KEY: {"hdr": True}}, queued_s=0.05, processing_s=0.1) as e:
        yield e


def client(emu, **kw) -> "luma_agents.Luma":
    return luma_agents.Luma(base_url=emu.base_url, auth_token=KEY, **kw)


def wait_done(c, gid: str, timeout: float = 20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        g = c.generations.get(gid)
        if g.state in ("completed", "failed"):
            return g
        time.sleep(0.05)
    raise AssertionError(f"generation {gid} did not finish")


def probe(data: bytes) -> tuple[int, int, int, float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return stream.codec_context.width, stream.codec_context.height, frames, float(stream.average_rate)


def png_bytes(w: int = 64, h: int = 36) -> bytes:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def test_client_creates_polls_and_downloads_a_real_mp4(emu):
    c = client(emu)
    g = c.generations.create(prompt="a lighthouse at dusk", model="ray-3.2", type="video",
                             aspect_ratio="16:9", video=VIDEO_360)
    assert g.state == "queued" and g.output is None
    done = wait_done(c, g.id)
    assert done.state == "completed"
    [out] = done.output
    assert out.type == "video"
    data = httpx.get(out.url).content
    assert probe(data) == (640, 360, 121, 24.0)


def test_async_client_polls_a_vertical_clip(emu):
    async def run():
        async with luma_agents.AsyncLuma(base_url=emu.base_url, auth_token=KEY) as c:
            g = await c.generations.create(prompt="rain on a window", model="ray-3.2", type="video",
                                           aspect_ratio="9:16", video=VIDEO_360)
            while g.state not in ("completed", "failed"):
                await asyncio.sleep(0.05)
                g = await c.generations.get(g.id)
            return g

    g = asyncio.run(run())
    assert g.state == "completed"
    w, h, frames, fps = probe(httpx.get(g.output[0].url).content)
    assert (w, h, frames) == (360, 640, 121)


def test_presigned_upload_then_keyframes_by_file_id(emu):
    c = client(emu)
    png = png_bytes()
    created = c.files.create(mime_type="image/png", size_bytes=len(png), filename="key.png", purpose="input")
    assert created.state == "pending" and created.upload is not None and created.upload.method == "PUT"
    put = httpx.put(created.upload.url, content=png, headers=created.upload.headers or {})
    assert put.status_code == 200
    f = c.files.complete(created.id)
    while f.state == "pending":
        f = c.files.get(created.id)
    assert f.state == "ready" and f.size_bytes == len(png) and f.filename == "key.png"
    g = c.generations.create(prompt="keyframed", model="ray-3.2", type="video", aspect_ratio="16:9",
                             video={"resolution": "360p", "duration": "10s",
                                    "keyframes": [{"file_id": f.id}, {"file_id": f.id}],
                                    "keyframe_indexes": [0, 240]})
    done = wait_done(c, g.id)
    assert done.state == "completed"
    assert probe(httpx.get(done.output[0].url).content)[2] == 241
    c.files.delete(f.id)
    assert c.files.get(f.id).state == "deleted"


def test_files_list_pages_newest_first_with_cursor(emu):
    c = client(emu)
    ids = [c.files.create(mime_type="image/png", size_bytes=10 + i).id for i in range(5)]
    seen, cursor = [], None
    while True:
        page = c.files.list(limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [f.id for f in page.data]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen == ids[::-1]


def test_refused_combination_raises_the_clients_422_and_creates_no_job(emu):
    c = client(emu)
    with pytest.raises(luma_agents.UnprocessableEntityError) as err:
        c.generations.create(prompt="loop", model="ray-3.2", type="video",
                             video={"resolution": "360p", "duration": "10s", "loop": True})
    assert "loop" in err.value.body["detail"]
    with pytest.raises(luma_agents.BadRequestError):
        c.post("/generations", content=b"{not json", cast_to=object, options={"headers": {"Content-Type": "application/json"}})
    assert emu.jobs_created == 0


def test_client_honours_429_retry_after(emu):
    emu.inject(Fault(status=429, retry_after=1))
    t0 = time.monotonic()
    g = client(emu).generations.create(prompt="patience", model="ray-3.2", type="video", video=VIDEO_360)
    assert time.monotonic() - t0 >= 1.0
    assert g.state == "queued"
    assert [s.status for s in emu.requests] == [429, 201]
    assert emu.jobs_created == 1


def test_client_retry_after_dropped_create_bills_two_jobs(emu):
    """The hole Director closes: the SDK re-sends a POST whose job already exists."""
    emu.inject(Fault(drop_after_create=True))
    g = client(emu).generations.create(prompt="double", model="ray-3.2", type="video", video=VIDEO_360)
    assert [s.status for s in emu.requests] == [0, 201]
    assert emu.billed_jobs == 2
    assert g.id == emu.generations[1]["id"] != emu.generations[0]["id"]


def test_client_without_retries_sees_the_drop_and_one_billed_job(emu):
    emu.inject(Fault(drop_after_create=True))
    with pytest.raises(luma_agents.APIConnectionError):
        client(emu, max_retries=0).generations.create(prompt="once", model="ray-3.2", type="video", video=VIDEO_360)
    assert emu.billed_jobs == 1
