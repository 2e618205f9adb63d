"""Make the UI-format workflows in workflows/ from their API-format copies in workflows/api/.

The real frontend does the conversion, so widget order, links and node sizes are exactly what
ComfyUI itself would save. A maintenance tool, not a test:

    COMFY_URL=http://127.0.0.1:PORT python tests/ui/workflow_ui_from_api.py [names...]

Needs a running ComfyUI with the pack, playwright and Debian's chromium.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONVERT = """async ([api, name]) => {
  const app = window.app;
  await app.loadApiJson(api, name);
  const g = app.graph;
  // lay nodes out left to right by dependency depth, so the template reads like the pipeline
  const nodes = [...g._nodes];
  const depth = new Map();
  const d = (n) => {
    if (depth.has(n.id)) return depth.get(n.id);
    depth.set(n.id, 0);
    let best = 0;
    for (const inp of n.inputs || []) {
      if (inp.link == null) continue;
      const link = g.links[inp.link] ?? g.links.get?.(inp.link);
      const src = link && g.getNodeById(link.origin_id);
      if (src) best = Math.max(best, d(src) + 1);
    }
    depth.set(n.id, best);
    return best;
  };
  nodes.forEach(d);
  const cols = new Map();
  for (const n of nodes.sort((a, b) => a.id - b.id)) {
    const c = depth.get(n.id);
    const y = cols.get(c) ?? 140;
    n.pos = [120 + c * 460, y];
    cols.set(c, y + (n.size?.[1] ?? 200) + 140);
  }
  return app.graph.serialize();
}"""


def main(names: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    base = os.environ["COMFY_URL"].rstrip("/")
    files = sorted((ROOT / "workflows" / "api").glob("*.json"))
    if names:
        files = [f for f in files if f.stem in names]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
                                    headless=True, args=["--no-sandbox", "--disable-gpu", "--use-gl=swiftshader"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.route(re.compile(r"^(?!%s/)https?://" % re.escape(base)), lambda route: route.abort())
        page.goto(base + "/", wait_until="domcontentloaded")
        page.wait_for_function("() => window.app && window.app.graph && (window.app.isGraphReady ?? true)", timeout=120_000)
        for f in files:
            ui = page.evaluate(CONVERT, [json.loads(f.read_text()), f.stem])
            ui.setdefault("extra", {})["director"] = {"api_copy": f"api/{f.name}"}
            out = ROOT / "workflows" / f.name
            out.write_text(json.dumps(ui, indent=1) + "\n")
            print(f"{f.name}: {len(ui['nodes'])} nodes, {len(ui['links'])} links -> {out.relative_to(ROOT)}")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1:])
