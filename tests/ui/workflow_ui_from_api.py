"""Make the Templates menu's workflows (example_workflows/, titled as users see them) from their
API-format copies in workflows/api/ and the LIVE node definitions of a running ComfyUI.

The real frontend does the conversion (app.loadApiJson on the server's /object_info), so widget
order, links and node sizes are exactly what ComfyUI itself would save; rerun it whenever a node
changes and the templates cannot drift. A maintenance tool, also driven by the Run test
(tests/test_templates_comfyui.py):

    COMFY_URL=http://127.0.0.1:PORT python tests/ui/workflow_ui_from_api.py build [names...]
    COMFYUI_DIR=<ComfyUI work tree>  python tests/ui/workflow_ui_from_api.py build   (starts its own)
    python tests/ui/workflow_ui_from_api.py run --out DIR [--queue] [--workflow FILE] [names...]

``run`` loads each template (or --workflow FILE) in the frontend, writes DIR/<name>.prompt.json (the
prompt as the Run button makes it: app.graphToPrompt()), DIR/<name>.before.png and, with --queue,
presses Run (app.queuePrompt), writes DIR/<name>.queued.json (the POST /prompt the browser sent and
the server's answer: prompt_id, or HTTP 400 with node_errors), waits for the queue to empty and
writes DIR/<name>.after.png.
Needs playwright and Debian's chromium (ComfyUI's venv has playwright).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API_DIR = ROOT / "workflows" / "api"
TEMPLATES_DIR = ROOT / "example_workflows"

TITLES = {
    "video_to_aces_exr_and_mp4_proxy": "Video to ACES EXR and MP4 proxy",
    "keyframes_draft_animatic": "Keyframes to Draft animatic",
    "keyframes_to_exr": "Keyframes to EXR",
    "local_ltx_keyframes": "Keyframes on your LTX-Video model",
    "local_wan_vace_keyframes": "Keyframes on your Wan VACE model",
    "local_wan_vace_reframe": "Reframe on your Wan VACE model",
    "local_wan_vace_modify": "Modify Video on your Wan VACE model",
    "reframe_16x9_to_9x16_for_social": "Reframe 16x9 to 9x16 for social",
    "one_master_to_six_formats": "One master to six formats",
    "modify_keep_the_performance": "Modify - keep the performance, change the world",
    "camera_move_from_reference_footage": "Camera move from reference footage",
    "sequence_to_timeline": "Sequence to editorial timeline",
    "local_character_swap_keep_the_performance": "Character swap on your Wan Animate model",
}
"""API copy name -> the template's title in ComfyUI's Templates menu (its file name there)."""


def template_file(name: str) -> Path:
    """The UI-format template made from workflows/api/<name>.json."""
    return TEMPLATES_DIR / f"{TITLES[name]}.json"


NOTES = {
    "video_to_aces_exr_and_mp4_proxy": (
        "## Video to ACES EXR + MP4 proxy\n"
        "Streams the footage (never the whole clip in memory) into a 16-bit half **EXR sequence in "
        "ACES2065-1** (AP0 chromaticities, PIZ, frame 1001 on) and an **H.264 proxy** with BT.709 tags "
        "and the source audio.\n\nPick your own clip in *Load Video* (upload or path); each run writes a "
        "new `_v00N` folder inside ComfyUI's output folder, never over an existing sequence."),
    "keyframes_draft_animatic": (
        "## Keyframes to Draft animatic\n"
        "*Grab Frames* pulls keyframe images from the sample footage; the *Keyframe Timeline* places them "
        "(drag to move, snap to frames, type directions). *Generate Video* with the free **Draft engine** "
        "renders a CPU animatic: each keyframe exactly on its frame, optical-flow morphs between them.\n\n"
        "To render the same shot with Ray3.2: connect a *Luma Engine* to Generate Video instead of the Draft "
        "Engine, and in the timeline set **hold to 0** on the two held keyframes (image:0 and image:3): Luma "
        "cannot hold a frame still and refuses a hold. Nothing else changes."),
    "keyframes_to_exr": (
        "## Keyframes to EXR\n"
        "The keyframe shot from the timeline, finished to an **ACES2065-1 EXR sequence** for compositing. "
        "With the Luma Engine, HDR and EXR on, the EXR Writer reads Luma's scene-linear 16-bit frames "
        "directly instead of the MP4."),
    "local_ltx_keyframes": (
        "## Keyframes on your own LTX-Video model\n"
        "The *Local Engine* runs the timeline's shot on **your LTX-Video checkpoint** as ComfyUI's native nodes "
        "(one `LTXVAddGuide` per keyframe at its frame). Put `ltx-video-2b-v0.9.5.safetensors` in "
        "`models/checkpoints` and `t5xxl_fp16.safetensors` in `models/text_encoders` (or load your own).\n\n"
        "Generate Video says the length and size chosen (8n+1 frames, multiples of 32). Swap the engine node "
        "for Draft or Luma: nothing else changes."),
    "local_wan_vace_keyframes": (
        "## Keyframes on your own Wan VACE model\n"
        "The *Local Engine* runs the shot on **Wan 2.1/2.2 VACE** as native nodes: `WanVaceToVideo` with a "
        "control video (keyframe images on their frames) and one mask per frame. Put "
        "`wan2.1_vace_1.3B_fp16.safetensors` in `models/diffusion_models`, `wan_2.1_vae.safetensors` in "
        "`models/vae` and `umt5_xxl_fp8_e4m3fn_scaled.safetensors` in `models/text_encoders`.\n\n"
        "working_size 832 generates at Wan 1.3B's 480p class and scales the MP4 to the shot's size."),
    "local_wan_vace_reframe": (
        "## Reframe on your own Wan VACE model\n"
        "The *Local Engine* runs *Reframe Video* on **Wan 2.1/2.2 VACE** as native nodes: the control video is "
        "the source placed on the new 9:16 canvas over 0.5 grey, one mask per frame (0 where the source is, 1 "
        "where the model fills). The result keeps the source's frame count, frame rate and audio. Model files as "
        "in the Wan VACE keyframes template (`models/diffusion_models`, `models/vae`, `models/text_encoders`).\n\n"
        "working_size 832 generates at Wan 1.3B's 480p class and scales to the shot's size. Swap the engine node "
        "for Draft or Luma: nothing else changes."),
    "local_wan_vace_modify": (
        "## Modify Video on your own Wan VACE model\n"
        "*Motion Source* tracks the people's poses; the *Local Engine* runs *Modify Video* on **Wan 2.1/2.2 VACE** "
        "with the rendered skeletons as the control video (every frame generated, one mask per frame). "
        "*Tracking*'s motion_adherence 0.5 is VACE strength 1.0. The result keeps the source's frame count, frame "
        "rate and audio. Model files as in the Wan VACE keyframes template.\n\n"
        "Swap the engine node for Draft or Luma: nothing else changes."),
    "reframe_16x9_to_9x16_for_social": (
        "## Reframe 16:9 to 9:16 for social\n"
        "The *Reframe Canvas* shows the new vertical frame with the source's first frame in it (run once): "
        "drag the source, scale it from a corner (aspect locked), snap to the centre and thirds, undo. "
        "*Reframe Video* keeps the source exactly there, with its frame count, frame rate and audio, and "
        "fills the new area. With no engine connected the free **Draft engine** makes a preview fill; connect "
        "a Luma Engine for Ray3.2's generated extension (billed per output second, shown before it runs)."),
    "one_master_to_six_formats": (
        "## One master to six formats\n"
        "One 16:9 master, six deliverables: 9:16 (centred and top, room for captions), 3:4, 1:1, 4:3 and "
        "21:9. Each *Reframe Canvas* places the source; each *Reframe Video* renders one format into its own "
        "folder. On the Luma Engine the master is uploaded once and the six jobs run side by side."),
    "modify_keep_the_performance": (
        "## Modify: keep the performance, change the world\n"
        "*Motion Source* tracks the people (COCO-17 skeletons), their faces, the camera and the edges of the "
        "sample clip; *Tracking* says what survives the restyle (poses precise, face performance, structure and "
        "motion adherence). *Modify Video* without an engine makes the free **Draft preview**: the source "
        "restyled and labelled DRAFT with the tracked skeletons, faces and edges on top, exactly the source's "
        "frames and rate, its audio untouched.\n\nConnect a Luma Engine to *Modify Video* for the real "
        "Ray3.2 video_edit (credits are shown on the node before running)."),
    "camera_move_from_reference_footage": (
        "## Camera move from reference footage\n"
        "*Motion Source* (camera only) tracks the pan of the reference clip. *Camera Motion* moves a still "
        "(a frame from *Grab Frames*) along that path: an exact warp, one frame per reference frame. The moved "
        "plate is saved, and becomes the source of *Modify Video*, which keeps its motion (motion adherence 1) "
        "while the prompt makes a new world.\n\nWith a Luma Engine on *Modify Video*, the plate is uploaded "
        "as the video_edit source, so the reference's camera move drives a Ray3.2 shot."),
    "sequence_to_timeline": (
        "## Sequence to editorial timeline\n"
        "*Shot List* reads an OpenTimelineIO timeline (`director/timelines/storyboard_v001/storyboard.otio` in "
        "the output folder: export one with *Timeline Export*, or type your own .otio) and gives each clip's "
        "prompt, length and keyframes as lists, so *Generate Video* runs **once per shot**. *Timeline Export* "
        "writes the rendered sequence as a new .otio (with an EDL and FCP XML) for your editor.\n\n"
        "Without that file, Run is refused naming it. Swap the Draft Engine for a Luma or Local Engine to render "
        "the same list for real."),
    "local_character_swap_keep_the_performance": (
        "## Character swap on your own Wan 2.2 Animate model\n"
        "*Motion Source* tracks the performer's pose and face; *Modify Video* with a **character** image and the "
        "*Local Engine* expands into native `WanAnimateToVideo`: pose renders, 512x512 face crops along the face "
        "track and, in `replace` mode, the source as background with the performer's mask, so the character takes "
        "their place and keeps the performance. The shot keeps the source's frame count, rate and audio. Put "
        "`wan2.2_animate_14B_bf16.safetensors` in `models/diffusion_models`, `wan_2.1_vae.safetensors` in "
        "`models/vae`, the umT5-XXL text encoder in `models/text_encoders` and `clip_vision_h.safetensors` in "
        "`models/clip_vision` (CLIP vision encodes the character so it keeps its identity; without it the shot "
        "still runs and says so), and upload your character's picture in *Load Image (the character)*.\n\n"
        "Swap the engine node for Draft or Luma: nothing else changes (they ignore the character and say so)."),
}

CONVERT = """async ([api, name, note]) => {
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
  // columns as wide as their widest node (the timeline widget widens itself when created)
  const byCol = new Map();
  for (const n of nodes.sort((a, b) => a.id - b.id)) {
    const c = depth.get(n.id);
    if (!byCol.has(c)) byCol.set(c, []);
    byCol.get(c).push(n);
  }
  let x = 120, bottom = 0;
  for (const c of [...byCol.keys()].sort((a, b) => a - b)) {
    let y = 140, width = 0;
    // short nodes first: a node that grows when it shows a preview (Vue renderer) grows into free space
    for (const n of byCol.get(c).sort((a, b) => (a.size?.[1] ?? 0) - (b.size?.[1] ?? 0))) {
      n.pos = [x, y];
      y += (n.size?.[1] ?? 200) + 230;  // room for the taller Vue ("Nodes 2.0") renderer too
      width = Math.max(width, n.size?.[0] ?? 300);
    }
    bottom = Math.max(bottom, y);
    x += width + 90;
  }
  if (note) {
    const md = LiteGraph.createNode("MarkdownNote");
    if (md) {
      md.widgets[0].value = note;
      md.pos = [120, bottom + 120];
      md.size = [Math.min(x - 210, 900), 220];
      g.add(md);
    }
  }
  return app.graph.serialize();
}"""


def fit_view(nodes: list[dict], width: float = 1350, height: float = 820) -> dict:
    """Canvas scale and offset that show the whole graph when the template opens."""
    x0 = min(n["pos"][0] for n in nodes)
    y0 = min(n["pos"][1] for n in nodes) - 40
    x1 = max(n["pos"][0] + n["size"][0] for n in nodes)
    y1 = max(n["pos"][1] + n["size"][1] for n in nodes)
    scale = round(min(1.0, width / (x1 - x0), height / (y1 - y0)), 3)
    return {"scale": scale, "offset": [round(120 / scale - x0, 1), round(90 / scale - y0, 1)]}


def _open(p, base: str):
    browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM_PATH") or shutil.which("chromium"), headless=True,
                                args=["--no-sandbox", "--disable-gpu", "--use-gl=swiftshader",
                                      "--disable-dev-shm-usage"])
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.route(re.compile(r"^(?!%s/)https?://" % re.escape(base)), lambda route: route.abort())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _post(base, "/settings/Comfy.TutorialCompleted", True)
    page.goto(base + "/", wait_until="domcontentloaded")
    page.wait_for_function("() => window.app && window.app.graph && (window.app.isGraphReady ?? true)",
                           timeout=180_000)
    return browser, page, errors


def _post(base: str, path: str, body) -> None:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def _queue_empty(base: str) -> bool:
    with urllib.request.urlopen(base + "/queue", timeout=30) as r:
        q = json.loads(r.read())
    return not q.get("queue_running") and not q.get("queue_pending")


def build(base: str, names: list[str], into: Path = TEMPLATES_DIR) -> None:
    from playwright.sync_api import sync_playwright

    files = sorted(API_DIR.glob("*.json"))
    unknown = [f.stem for f in files if f.stem not in TITLES]
    if unknown:
        sys.exit(f"no title for {unknown}: add them to TITLES")
    if names:
        files = [f for f in files if f.stem in names]
    into.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser, page, _ = _open(p, base)
        for f in files:
            ui = page.evaluate(CONVERT, [json.loads(f.read_text()), TITLES[f.stem], NOTES.get(f.stem, "")])
            for node in ui["nodes"]:  # the note's editor may not have mounted yet: set its saved text here
                if node["type"] == "MarkdownNote":
                    node["widgets_values"] = [NOTES.get(f.stem, "")]
            ui.setdefault("extra", {})["director"] = {"api_copy": f"workflows/api/{f.name}"}
            ui["extra"]["ds"] = fit_view(ui["nodes"])
            out = into / template_file(f.stem).name
            out.write_text(json.dumps(ui, indent=1) + "\n")
            print(f"{f.name}: {len(ui['nodes'])} nodes, {len(ui['links'])} links -> {out}")
        browser.close()


def run(base: str, out: Path, names: list[str], workflow: str | None, queue: bool, timeout: float) -> int:
    """Load templates in the frontend; write the Run button's prompt and screenshots; optionally press Run."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    if workflow:
        items = [(Path(workflow).stem, Path(workflow))]
    else:
        items = [(n, template_file(n)) for n in sorted(TITLES) if not names or n in names]
    failed = 0
    with sync_playwright() as p:
        browser, page, errors = _open(p, base)
        hidden = page.evaluate("""() => Object.entries(LiteGraph.registered_node_types)
            .filter(([type, cls]) => type.startsWith("Director") && cls.skip_list).map(([type]) => type).sort()""")
        (out / "node_library.json").write_text(json.dumps({"hidden_from_library": hidden}, indent=1) + "\n")
        for name, path in items:
            errors.clear()
            ui = json.loads(path.read_text())
            report = page.evaluate("""async ([ui, name]) => {
              await app.loadGraphData(ui, true, true, name);
              const types = app.graph._nodes.map((n) => n.type);
              const unknown = types.filter((t) => !LiteGraph.registered_node_types[t]);
              return {types, unknown};
            }""", [ui, name])
            time.sleep(2.0)  # widgets that the frontend adds after loading (video previews) settle first
            for _ in range(3):
                page.keyboard.press("Escape")
            prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
            (out / f"{name}.prompt.json").write_text(json.dumps(prompt, indent=1) + "\n")
            page.screenshot(path=str(out / f"{name}.before.png"))
            if queue:
                # what the Run button sends and what the server answers, as the browser saw them
                with page.expect_response(lambda r: r.url.endswith("/prompt") and r.request.method == "POST",
                                          timeout=120_000) as answer:
                    page.evaluate("() => app.queuePrompt(0, 1)")
                response = answer.value
                queued = {"status": response.status, "sent": response.request.post_data_json,
                          "answer": response.json()}
                (out / f"{name}.queued.json").write_text(json.dumps(queued, indent=1) + "\n")
                deadline = time.time() + timeout
                while time.time() < deadline and not _queue_empty(base):
                    time.sleep(1.0)
                time.sleep(2.0)
                page.screenshot(path=str(out / f"{name}.after.png"))
            result = {"name": name, "nodes": len(report["types"]), "unknown_types": report["unknown"],
                      "page_errors": list(errors)}
            failed += bool(report["unknown"] or errors)
            print(json.dumps(result), flush=True)
        browser.close()
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["build", "run"])
    ap.add_argument("names", nargs="*", help="API copy names (default: all)")
    ap.add_argument("--out", type=Path, help="run: folder for prompts and screenshots; build: folder to write "
                                             "the templates into (default example_workflows/)")
    ap.add_argument("--workflow", help="run: one UI-format file instead of the templates")
    ap.add_argument("--queue", action="store_true", help="run: press Run and wait for the queue to empty")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_intermixed_args(argv)
    server = None
    base = os.environ.get("COMFY_URL", "").rstrip("/")
    if not base:
        sys.path.insert(0, str(ROOT / "tests"))
        import tempfile

        from comfyui_server import ComfyServer

        server = ComfyServer(os.environ["COMFYUI_DIR"], Path(tempfile.mkdtemp(prefix="director_ui_"))).start()
        base = server.url
    try:
        if args.command == "build":
            build(base, args.names, args.out or TEMPLATES_DIR)
            return 0
        return run(base, args.out, args.names, args.workflow, args.queue, args.timeout)
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
