"""A user drags the source in the Reframe Canvas widget of a real ComfyUI frontend, in both renderers,
then runs the graph on Draft and on Luma (the bundled emulator) and gets each format with the source
exactly where it was placed and the audio intact. A manual check, not a pytest (it needs Chromium):

    COMFYUI_DIR=/path/to/ComfyUI python tests/ui/reframe_ui.py --shots /tmp/reframe-shots

Starts its own ComfyUI (tests/comfyui_server.py) with the pack and a Luma emulator on loopback, puts a
coded synthetic clip (tests/media.py) in the input folder, loads Load Video -> Reframe Canvas ->
Reframe Video (Draft) + Reframe Video (Luma), runs it once (the widget then shows the source's first
frame), and in headless Chromium: drags the source (snap off) and checks the JSON moved by exactly the
pointer's distance, scales it from a corner (aspect locked) and checks the shape, undoes and redoes,
drags near the centre with snap on and checks it snapped; takes screenshots in the canvas (LiteGraph)
renderer and in the Vue ("Nodes 2.0") renderer (where it drags again); runs the graph again and checks
both outputs: every frame's source pixels where the JSON puts them, the audio packets the source's.
Prints a JSON report; exit 0 when every check holds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

KEY = "luma-emulator-key-for-reframe-ui"
START = '{"version": 1, "aspect_ratio": "9:16", "x_norm": 0, "y_norm": 0.1, "w_norm": 1, "h_norm": 0.31640625}'


def prompt(clip: str) -> dict:
    return {
        "1": {"class_type": "DirectorLoadVideo",
              "inputs": {"video": "director-samples/director_sample_720p24.mp4", "path": clip, "start_frame": 0,
                         "frame_count": 0, "stride": 1, "max_size": 0}},
        "2": {"class_type": "DirectorReframeCanvas",
              "inputs": {"video": ["1", 0], "canvas": START, "preset": "custom", "resolution": "360p"}},
        "3": {"class_type": "DirectorReframeVideo",
              "inputs": {"video": ["1", 0], "canvas": ["2", 0], "prompt": "", "resolution": "360p",
                         "max_source_seconds": 16.0, "filename_prefix": "director/reframe/ui_draft"}},
        "4": {"class_type": "DirectorLumaEngine",
              "inputs": {"model": "ray-3.2", "poll_interval": 0.5, "max_concurrent_jobs": 4,
                         "max_credits_per_job": 0, "max_credits_per_session": 0, "user_id": ""}},
        "5": {"class_type": "DirectorReframeVideo",
              "inputs": {"video": ["1", 0], "canvas": ["2", 0], "engine": ["4", 0], "prompt": "open sky",
                         "resolution": "360p", "max_source_seconds": 16.0,
                         "filename_prefix": "director/reframe/ui_luma"}},
    }


STATE = """() => {
  const node = app.graph._nodes.find(n => n.type === 'DirectorReframeCanvas');
  const ed = node.directorReframe;
  const st = ed.state();
  const m = ed.metrics(st.aspect);
  const r = ed.canvas.getBoundingClientRect();
  const k = r.width / ed.canvas.clientWidth;
  const v = ed.toView(st.rect, m.frame);
  return {text: node.widgets.find(w => w.name === 'canvas').value,
          preset: node.widgets.find(w => w.name === 'preset').value,
          hasSource: !!ed.source, k, frameW: m.frame.w * k, frameH: m.frame.h * k,
          rect: {x: r.left + v.x * k, y: r.top + v.y * k, w: v.w * k, h: v.h * k}};
}"""


def wait_idle(base: str, timeout: float = 600) -> None:
    import urllib.request

    deadline = time.time() + timeout
    time.sleep(1.0)
    while time.time() < deadline:
        with urllib.request.urlopen(base + "/queue", timeout=10) as r:
            q = json.load(r)
        if not q.get("queue_running") and not q.get("queue_pending"):
            return
        time.sleep(0.5)
    raise TimeoutError("the queue did not empty")


def close_dialogs(page) -> None:
    """Close what a first start opens over the graph (the templates browser)."""
    for _ in range(5):
        if page.locator(".p-dialog").count() == 0:
            return
        page.keyboard.press("Escape")
        page.wait_for_timeout(400)


def drag(page, x0, y0, dx, dy, steps=10):
    page.mouse.move(x0, y0)
    page.mouse.down()
    for s in range(1, steps + 1):
        page.mouse.move(x0 + dx * s / steps, y0 + dy * s / steps)
    page.mouse.up()
    page.wait_for_timeout(300)


def check_output(path: Path, src: Path, canvas_text: str) -> dict:
    import cv2
    import numpy as np

    from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks, probe
    from comfyui_director.nodes.shot import geometry

    info = probe(path)
    p = geometry.place(geometry.parse_state(canvas_text), 320, 180, info.width, info.height)
    vx0, vy0, vx1, vy1 = p.visible
    src_frames = next(iter_chunks(FootageRef(str(src)), 1000))
    out = next(iter_chunks(FootageRef(str(path)), 1000))
    errs = []
    for f, s in zip(out, src_frames):
        want = cv2.resize(s, (p.width, p.height), interpolation=cv2.INTER_LINEAR)[vy0 - p.y0:vy1 - p.y0, vx0 - p.x0:vx1 - p.x0]
        errs.append(float(np.abs(f[vy0:vy1, vx0:vx1].astype(np.int16) - want.astype(np.int16)).mean()))

    def packets(pth):
        import av

        with av.open(str(pth)) as c:
            return [bytes(pk) for pk in c.demux(c.streams.audio[0]) if pk.size]

    return {"file": str(path), "size": [info.width, info.height], "frames": info.frame_count,
            "source_frames": len(src_frames), "pixels": [p.x0, p.y0, p.x1, p.y1],
            "max_mean_error": round(max(errs), 2), "audio_identical": packets(path) == packets(src)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", required=True, help="folder for the screenshots")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from comfyui_director.nodes.engines.luma.emulator import LumaEmulator
    from comfyui_server import ComfyServer
    from media import make_clip

    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    errors: list[str] = []
    import tempfile

    base_dir = Path(tempfile.mkdtemp(prefix="reframe-ui-"))
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.2, processing_s=0.5) as emu, \
            ComfyServer(os.environ["COMFYUI_DIR"], base_dir,
                        env={"LUMA_AGENTS_API_KEY": KEY, "LUMA_BASE_URL": emu.base_url}) as comfy:
        src = make_clip(base_dir / "input" / "coded.mp4", 320, 180, 36, fps=24, audio=True)
        base = comfy.url
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--use-gl=swiftshader"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route(re.compile(r"^(?!%s/)https?://" % re.escape(base)), lambda route: route.abort())
            page.goto(base + "/", wait_until="domcontentloaded")
            page.wait_for_function("() => window.app && window.app.canvas && (window.app.isGraphReady ?? !!window.app.graph)",
                                   timeout=180_000)
            # a first start opens a starter template by itself a moment after load: let it, then load ours
            page.evaluate("async () => { await app.ui.settings.setSettingValueAsync('Comfy.TutorialCompleted', true); }")
            page.wait_for_timeout(4000)
            close_dialogs(page)
            page.evaluate("async () => { await app.ui.settings.setSettingValueAsync('Comfy.VueNodes.Enabled', false); }")
            page.evaluate("async (api) => { await app.loadApiJson(api, 'reframe'); }", prompt(str(src)))
            page.evaluate("""() => { const n = app.graph._nodes.find(n => n.type === 'DirectorReframeCanvas');
                n.pos = [420, 80]; app.canvas.ds.scale = 1; app.canvas.ds.offset = [0, 0];
                const vids = app.graph._nodes.filter(n => n.type === 'DirectorReframeVideo');
                vids.forEach((v, i) => { v.pos = [1000 + i * 440, 80]; });
                app.graph.setDirtyCanvas(true, true); }""")
            page.evaluate("async () => { await app.queuePrompt(0, 1); }")
            wait_idle(base)
            close_dialogs(page)
            page.wait_for_function(STATE.replace("return {text", "return ed.source && {text"), timeout=60_000)
            page.wait_for_timeout(800)
            s0 = page.evaluate(STATE)
            page.screenshot(path=str(shots / "canvas_before.png"))
            # 1. move with snap off: the JSON moves by exactly the pointer's distance in frame units
            page.evaluate("() => { app.graph._nodes.find(n => n.type === 'DirectorReframeCanvas').directorReframe.snap = false; }")
            r = s0["rect"]
            dx, dy = 23.0, 61.0
            drag(page, r["x"] + r["w"] * 0.4, r["y"] + r["h"] * 0.6, dx, dy)
            s1 = page.evaluate(STATE)
            j0, j1 = json.loads(s0["text"]), json.loads(s1["text"])
            moved = {"dx_norm": j1["x_norm"] - j0["x_norm"], "dy_norm": j1["y_norm"] - j0["y_norm"],
                     "want_dx": dx / s0["frameW"], "want_dy": dy / s0["frameH"]}
            # 2. scale from the bottom-right corner, aspect locked
            r = s1["rect"]
            drag(page, r["x"] + r["w"], r["y"] + r["h"], -60, -5)
            s2 = page.evaluate(STATE)
            j2 = json.loads(s2["text"])
            shape = (j2["w_norm"] * 360) / (j2["h_norm"] * 640)
            # 3. undo twice (button), redo once (Ctrl+Y on the widget)
            page.evaluate("() => app.graph._nodes.find(n => n.type === 'DirectorReframeCanvas').directorReframe.undo()")
            page.evaluate("() => app.graph._nodes.find(n => n.type === 'DirectorReframeCanvas').directorReframe.undo()")
            undone = page.evaluate(STATE)["text"]
            page.evaluate("() => app.graph._nodes.find(n => n.type === 'DirectorReframeCanvas').directorReframe.canvas.focus()")
            page.keyboard.press("Control+y")
            page.wait_for_timeout(200)
            redone = page.evaluate(STATE)["text"]
            # 4. snap on: drop the source a few pixels off the frame's vertical centre
            page.evaluate("() => { app.graph._nodes.find(n => n.type === 'DirectorReframeCanvas').directorReframe.snap = true; }")
            s3 = page.evaluate(STATE)
            j3 = json.loads(s3["text"])
            r = s3["rect"]
            centre_y = (j3["y_norm"] + j3["h_norm"] / 2) * s3["frameH"]
            want_dy = 0.5 * s3["frameH"] - centre_y + 3  # 3 px short of the centre line
            drag(page, r["x"] + r["w"] / 2, r["y"] + r["h"] / 2, 0, want_dy)
            s4 = page.evaluate(STATE)
            j4 = json.loads(s4["text"])
            lines = (0.0, 1 / 3, 0.5, 2 / 3, 1.0)
            edges = {"top": j4["y_norm"], "centre": j4["y_norm"] + j4["h_norm"] / 2, "bottom": j4["y_norm"] + j4["h_norm"]}
            snapped = {k: round(v, 6) for k, v in edges.items() if any(abs(v - ln) < 1e-9 for ln in lines)}
            unsnapped_centre = j3["y_norm"] + j3["h_norm"] / 2 + want_dy / s3["frameH"]
            page.mouse.move(1500, 950)
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / "canvas_after_drag.png"))
            # 5. the Vue ("Nodes 2.0") renderer: the widget is there and drags too
            page.evaluate("async () => { await app.ui.settings.setSettingValueAsync('Comfy.VueNodes.Enabled', true); }")
            page.wait_for_timeout(2500)
            sv = page.evaluate(STATE)
            r = sv["rect"]
            page.evaluate("() => { app.graph._nodes.find(n => n.type === 'DirectorReframeCanvas').directorReframe.snap = false; }")
            drag(page, r["x"] + r["w"] * 0.5, r["y"] + r["h"] * 0.5, 0, -30)
            sv2 = page.evaluate(STATE)
            page.mouse.move(1500, 950)
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / "vue_after_drag.png"))
            vue_moved = json.loads(sv2["text"])["y_norm"] - json.loads(sv["text"])["y_norm"]
            final_text = sv2["text"]
            # 6. run again: both engines, the dragged canvas
            page.evaluate("async () => { await app.queuePrompt(0, 1); }")
            wait_idle(base)
            browser.close()
        out = comfy.base / "output" / "director" / "reframe"
        draft = sorted(out.glob("ui_draft_v*/ui_draft.mp4"))[-1]
        luma = sorted(out.glob("ui_luma_v*/ui_luma_audio.mp4"))[-1]
        report = {
            "source_shown": s0["hasSource"],
            "move": {k: round(v, 5) for k, v in moved.items()},
            "preset_after_drag": s1["preset"],
            "locked_shape": round(shape, 4),
            "undo_back_to_start": json.loads(undone) == j0,
            "redo_is_the_move": json.loads(redone) == j1,
            "snapped": snapped,
            "snap_moved_px": round((edges["centre"] - unsnapped_centre) * s3["frameH"], 2),
            "vue_drag_moved_y_norm": round(vue_moved, 5),
            "vue_frame_px": [round(sv["frameW"]), round(sv["frameH"])],
            "final_canvas": final_text,
            "draft": check_output(draft, src, final_text),
            "luma": check_output(luma, src, final_text),
            "emulator_jobs": emu.jobs_created,
            "page_errors": errors,
        }
    print(json.dumps(report, indent=2))
    ok = (report["source_shown"] and abs(moved["dx_norm"] - moved["want_dx"]) < 1e-3
          and abs(moved["dy_norm"] - moved["want_dy"]) < 1e-3 and s1["preset"] == "custom"
          and abs(shape - 16 / 9) < 1e-3 and report["undo_back_to_start"] and report["redo_is_the_move"]
          and snapped and abs(report["snap_moved_px"]) <= 7 and vue_moved < -0.01 and not errors
          and all(report[k]["frames"] == 36 and report[k]["max_mean_error"] < 6 and report[k]["audio_identical"]
                  for k in ("draft", "luma")))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
