"""Look at the credit estimate on Generate Video nodes in a real ComfyUI frontend (a manual check).

    COMFY_URL=http://127.0.0.1:PORT python tests/ui/credits_ui.py --shot /tmp/credits.png

Builds three Generate Video nodes in headless Chromium: one fed by a Luma Engine at 1080p HDR
(expect "≈ 800 credits"), one without an engine ("Draft: free"), one with a Luma Engine and EXR
but no HDR ("EXR needs HDR"), then two Modify Video nodes: one fed by a Luma Engine at 720p HDR
(expect "≈ 720 credits / 5 s") and one without ("Draft: free"), and saves a screenshot to open and
check by eye.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

BUILD = """async () => {
  const L = window.LiteGraph;
  app.graph.clear();
  const add = (type, x, y) => { const n = L.createNode(type); n.pos = [x, y]; app.graph.add(n); return n; };
  const set = (n, name, v) => { n.widgets.find(w => w.name === name).value = v; };
  const luma = add("DirectorLumaEngine", 80, 120);
  const hdr = add("DirectorGenerateVideo", 480, 100);
  luma.connect(0, hdr, hdr.findInputSlot("engine"));
  set(hdr, "resolution", "1080p"); set(hdr, "hdr", true);
  add("DirectorGenerateVideo", 980, 100);
  const luma2 = add("DirectorLumaEngine", 80, 620);
  const exr = add("DirectorGenerateVideo", 480, 620);
  luma2.connect(0, exr, exr.findInputSlot("engine"));
  set(exr, "exr", true);
  const luma3 = add("DirectorLumaEngine", 80, 1120);
  const mod = add("DirectorModifyVideo", 480, 1120);
  luma3.connect(0, mod, mod.findInputSlot("engine"));
  set(mod, "hdr", true);
  add("DirectorModifyVideo", 980, 1120);
  app.canvas.ds.scale = 0.6; app.canvas.ds.offset = [0, 0];
  app.graph.setDirtyCanvas(true, true);
}"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shot", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    base = os.environ.get("COMFY_URL", "").rstrip("/")
    if not base:
        sys.exit("set COMFY_URL")
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route(re.compile(r"^(?!%s/)https?://" % re.escape(base)), lambda route: route.abort())
        page.goto(base + "/", wait_until="domcontentloaded")
        page.wait_for_function("() => window.app && window.app.canvas && (window.app.isGraphReady ?? !!window.app.graph)",
                               timeout=120_000)
        page.evaluate(BUILD)
        page.wait_for_timeout(800)
        page.screenshot(path=args.shot)
        browser.close()
    print("page errors:", errors or "none")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
