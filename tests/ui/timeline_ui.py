"""Look at the Keyframe Timeline widget in a real ComfyUI frontend (a manual check, not a pytest).

    python tests/ui/timeline_ui.py prepare --input-dir $COMFY_RUN_DIR/input --workflow /tmp/tl.json
    python tests/ui/timeline_ui.py drag --workflow /tmp/tl.json --shot /tmp/after_drag.png

``prepare`` writes a 14-frame storyboard GIF into ComfyUI's input folder (LoadImage turns it
into a batch of 14 images) and a UI-format workflow: LoadImage -> Keyframe Timeline whose JSON
moves two images and adds two direction keyframes (16 keyframes in all).
``drag`` opens the frontend in headless Chromium (needs playwright and a running server:
$COMFY_URL), loads and runs the workflow, drags one keyframe with the mouse, reads the
``timeline`` widget back and prints a JSON report: the frame before and after, whether the new
frame is whole and where the pointer said it should land. Exit 0 when the drag landed exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.request
from pathlib import Path

N_IMAGES = 14
TIMELINE = {
    "v": 1,
    "keyframes": [
        {"id": "image:0", "frame": 0, "direction": "wide establishing shot, dawn"},
        {"id": "image:5", "frame": 44},
        {"id": "text:0", "frame": 52, "direction": "the camera drifts left as the sun clears the ridge"},
        {"id": "image:9", "frame": 86, "strength": 0.8},
        {"id": "text:1", "frame": 100, "direction": "slow push in"},
    ],
}


def make_storyboard(path: Path, n: int = N_IMAGES, size=(480, 270)) -> None:
    """n distinct frames: a sky that warms up, a sun that rises, a numbered ridge line."""
    from PIL import Image, ImageDraw

    w, h = size
    frames = []
    for i in range(n):
        t = i / max(n - 1, 1)
        im = Image.new("RGB", size)
        d = ImageDraw.Draw(im)
        for y in range(h):
            k = y / h
            d.line([(0, y), (w, y)], fill=(int(40 + 150 * t * (1 - k)), int(60 + 90 * k), int(140 + 80 * (1 - t) * k)))
        sx, sy = int(w * (0.15 + 0.7 * t)), int(h * (0.75 - 0.5 * t))
        d.ellipse([sx - 22, sy - 22, sx + 22, sy + 22], fill=(255, 220 - int(60 * (1 - t)), 120))
        pts = [(0, h)] + [(x, int(h * 0.68 + 18 * ((x * (i + 3)) % 97) / 97)) for x in range(0, w + 1, 24)] + [(w, h)]
        d.polygon(pts, fill=(20 + 3 * i, 28 + 2 * i, 36))
        d.text((14, 12), f"#{i}", fill=(255, 255, 255))
        frames.append(im)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=200, loop=0)


def workflow(image_name: str = "storyboard.gif") -> dict:
    """UI-format (v0.4) workflow: LoadImage -> Keyframe Timeline."""
    return {
        "last_node_id": 2, "last_link_id": 1, "version": 0.4, "groups": [], "config": {},
        "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}},
        "links": [[1, 1, 0, 2, 1, "IMAGE"]],
        "nodes": [
            {"id": 1, "type": "LoadImage", "pos": [70, 110], "size": [300, 330], "flags": {}, "order": 0, "mode": 0,
             "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]},
                                       {"name": "MASK", "type": "MASK", "links": None}],
             "properties": {"Node name for S&R": "LoadImage"}, "widgets_values": [image_name, "image"]},
            {"id": 2, "type": "DirectorKeyframeTimeline", "pos": [400, 110], "size": [1130, 420], "flags": {},
             "order": 1, "mode": 0,
             "inputs": [{"name": "keyframes", "type": "DIRECTOR_KEYFRAMES", "link": None},
                        {"name": "images", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "keyframes", "type": "DIRECTOR_KEYFRAMES", "links": None}],
             "properties": {"Node name for S&R": "DirectorKeyframeTimeline"},
             "widgets_values": ["5 s", json.dumps(TIMELINE), 16]},
        ],
    }


JS_STATE = """() => {
  const node = window.app.graph._nodes.find(n => n.type === 'DirectorKeyframeTimeline');
  const ed = node.directorTimeline;
  const items = ed.items();
  const m = ed.metrics();
  const r = ed.canvas.getBoundingClientRect();
  const k = r.width / ed.canvas.clientWidth;
  return {
    text: node.widgets.find(w => w.name === 'timeline').value,
    hasView: !!ed.view,
    pxPerFrame: m.scale.pxPerFrame * k,
    items: items.map(it => ({id: it.id, frame: it.frame, skip: it.skip, thumb: !!it.thumb,
      x: r.left + m.scale.frameToX(it.drawFrame) * k, y: r.top + m.bandMid * k})),
  };
}"""


def drag(args) -> int:
    from playwright.sync_api import sync_playwright

    base = os.environ.get("COMFY_URL", "").rstrip("/")
    if not base:
        sys.exit("set COMFY_URL")
    wf = json.loads(Path(args.workflow).read_text())
    report: dict = {}
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--use-gl=swiftshader"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route(re.compile(r"^(?!%s/)https?://" % re.escape(base)), lambda route: route.abort())
        page.goto(base + "/", wait_until="domcontentloaded")
        page.wait_for_function("() => window.app && window.app.canvas && (window.app.isGraphReady ?? !!window.app.graph)",
                               timeout=120_000)
        page.evaluate("async (wf) => { await window.app.loadGraphData(wf); }", wf)
        page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
        deadline = time.time() + 120
        while time.time() < deadline:
            with urllib.request.urlopen(base + "/queue", timeout=10) as r:
                q = json.load(r)
            if not q.get("queue_running") and not q.get("queue_pending"):
                break
            time.sleep(0.3)
        page.wait_for_function(JS_STATE.replace("return {", "return ed.view && {"), timeout=30_000)
        page.evaluate("(z) => { app.canvas.ds.scale = z; app.canvas.ds.offset = [0, 0]; app.graph.setDirtyCanvas(true, true); }",
                      args.zoom)
        page.wait_for_timeout(800)
        before = page.evaluate(JS_STATE)
        target = next(it for it in before["items"] if it["id"] == args.keyframe)
        page.mouse.move(target["x"], target["y"])
        page.mouse.down()
        steps = 12
        for s in range(1, steps + 1):
            page.mouse.move(target["x"] + args.dx * s / steps, target["y"] + (3 if s % 2 else -2))
        page.mouse.up()
        page.wait_for_timeout(300)
        after = page.evaluate(JS_STATE)
        if args.shot:
            page.mouse.move(800, 760)  # pointer off the widget: no hover tag
            page.wait_for_timeout(300)
            page.screenshot(path=args.shot)
            page.mouse.move(target["x"], target["y"] - 60)
        # undo and redo the drag (Ctrl+Z / Ctrl+Y on the focused timeline go to ComfyUI)
        page.keyboard.press("Control+z")
        page.wait_for_timeout(400)
        undone = page.evaluate(JS_STATE)
        page.evaluate("() => app.graph._nodes.find(n => n.type === 'DirectorKeyframeTimeline').directorTimeline.canvas.focus()")
        page.keyboard.press("Control+y")
        page.wait_for_timeout(400)
        redone = page.evaluate(JS_STATE)
        page.evaluate("() => { const ed = app.graph._nodes.find(n => n.type === 'DirectorKeyframeTimeline').directorTimeline;"
                      " ed.select('%s'); }" % args.keyframe)
        # keyboard: the dragged keyframe is selected and the timeline has focus
        page.evaluate("() => app.graph._nodes.find(n => n.type === 'DirectorKeyframeTimeline').directorTimeline.canvas.focus()")
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(200)
        nudged = page.evaluate(JS_STATE)
        # double-click an empty stretch of the track: a direction-only keyframe appears there
        free_x = after["items"][0]["x"] + 2.2 * before["pxPerFrame"]
        page.mouse.dblclick(free_x, target["y"])
        page.wait_for_timeout(200)
        added = page.evaluate(JS_STATE)
        page.keyboard.type("hero enters frame left")
        page.wait_for_timeout(200)
        typed = page.evaluate(JS_STATE)
        browser.close()
    def frame_of(state, kid):
        return next((e.get("frame") for e in json.loads(state["text"])["keyframes"] if e["id"] == kid), None)

    entry = next((e for e in json.loads(after["text"])["keyframes"] if e["id"] == args.keyframe), None)
    new_ids = sorted({e["id"] for e in json.loads(added["text"])["keyframes"]}
                     - {e["id"] for e in json.loads(after["text"])["keyframes"]})
    typed_entry = next((e for e in json.loads(typed["text"])["keyframes"] if new_ids and e["id"] == new_ids[0]), {})
    expected = target["frame"] + round(args.dx / before["pxPerFrame"])
    report = {
        "keyframe": args.keyframe,
        "frame_before": target["frame"],
        "drag_px": args.dx,
        "px_per_frame": round(before["pxPerFrame"], 3),
        "expected_frame": expected,
        "frame_in_json": entry and entry.get("frame"),
        "whole_frame": isinstance(entry and entry.get("frame"), int),
        "after_undo": frame_of(undone, args.keyframe),
        "after_redo": frame_of(redone, args.keyframe),
        "thumbnails_after_undo": sum(1 for it in undone["items"] if it["thumb"]),
        "after_arrow_right": frame_of(nudged, args.keyframe),
        "double_click_added": new_ids,
        "added_at_frame": typed_entry.get("frame"),
        "typed_direction": typed_entry.get("direction"),
        "thumbnails_drawn": sum(1 for it in before["items"] if it["thumb"]),
        "keyframes": len(before["items"]),
        "json_before": before["text"],
        "json_after": after["text"],
        "page_errors": errors,
    }
    print(json.dumps(report, indent=2))
    ok = (report["whole_frame"] and entry["frame"] == expected and entry["frame"] != target["frame"] and not errors
          and report["after_undo"] is None and report["after_redo"] == expected
          and report["thumbnails_after_undo"] == report["thumbnails_drawn"]
          and report["after_arrow_right"] == expected + 1 and len(new_ids) == 1
          and report["typed_direction"] == "hero enters frame left")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("prepare")
    pr.add_argument("--input-dir", required=True)
    pr.add_argument("--workflow", required=True)
    dr = sub.add_parser("drag")
    dr.add_argument("--workflow", required=True)
    dr.add_argument("--keyframe", default="image:3")
    dr.add_argument("--dx", type=float, default=61.0, help="pixels to drag to the right")
    dr.add_argument("--zoom", type=float, default=1.0, help="canvas zoom (the widget scales with it)")
    dr.add_argument("--shot", help="PNG of the page after the drag")
    dr.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    if args.cmd == "prepare":
        make_storyboard(Path(args.input_dir) / "storyboard.gif")
        Path(args.workflow).write_text(json.dumps(workflow(), indent=1))
        return 0
    return drag(args)


if __name__ == "__main__":
    sys.exit(main())
