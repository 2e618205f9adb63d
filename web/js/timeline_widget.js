// Keyframe Timeline widget for the DirectorKeyframeTimeline node.
//
// A pure view (serialize: false): the node's `timeline` STRING widget holds the JSON that places
// every keyframe (schema in nodes/keyframes/timeline.py); this widget draws it over the clip's
// 24 fps grid, lets the user drag keyframes (snapped to whole frames), type directions, add
// direction-only keyframes and skip/delete them, and writes the JSON back. Thumbnails come from
// the node's ui output (`director_timeline`) after a run. The math lives in timeline_core.js.

import {
  addTextKeyframe,
  deleteKeyframe,
  displayItems,
  formatTime,
  freeFrame,
  gridTicks,
  lastFrame,
  layoutThumbs,
  makeScale,
  moveKeyframe,
  parseTimeline,
  resetKeyframe,
  serializeTimeline,
  setField,
  snapFrame,
  sourceOf,
  takenFrames,
  thumbWidth,
  widestGapFrame,
  FPS,
} from "./timeline_core.js";

const { app } = window.comfyAPI.app;
const { api } = window.comfyAPI.api;

const NODE_ID = "DirectorKeyframeTimeline";
const UI_KEY = "director_timeline";
// The last run's view (thumbnails, chain and batch keyframes) is display data only; the JSON
// decides every position. It is kept in the node's properties, so a saved workflow reopens with
// it, and per graph and node for this session, so undo (which rebuilds the nodes) keeps it too.
const VIEW_PROPERTY = "director_timeline_view";
const sessionViews = new Map();
const viewKey = (node) => `${node.graph?.rootGraph?.id ?? node.graph?.id ?? ""}:${node.id}`;
const CANVAS_H = 224;
const WIDGET_H = 366;
const PAD_X = 16; // room for the first and last keyframe's marker
const BAND_H = 22;
const GAP = 4;
const COLORS = {
  bg: "#181818",
  band: "#222",
  bandEdge: "#2e2e2e",
  tickFrame: "#3c3c3c",
  tickHalf: "#5a5a5a",
  tickSecond: "#8c8c8c",
  label: "#9a9a9a",
  hover: "rgba(255,255,255,0.35)",
  source: { image: "#5aa9ff", chain: "#b68cff", text: "#f2b84b" },
  selected: "#ffffff",
  skipped: "#5b5b5b",
  problem: "#ff5f56",
  thumbBg: "#0e0e0e",
};

const CSS = `
.director-timeline { display: flex; flex-direction: column; gap: 6px; box-sizing: border-box; width: 100%;
  height: 100%; font: 12px/1.3 var(--comfy-font, system-ui, sans-serif); color: var(--input-text, #ddd); }
.director-timeline * { box-sizing: border-box; }
.director-timeline .dt-bar { display: flex; align-items: center; gap: 8px; min-height: 24px; }
.director-timeline .dt-info { color: var(--descrip-text, #999); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.director-timeline .dt-info b { color: var(--input-text, #ddd); font-weight: 600; }
.director-timeline .dt-info .dt-over { color: ${COLORS.problem}; }
.director-timeline .dt-spacer { flex: 1; }
.director-timeline .dt-hint { color: var(--descrip-text, #777); font-size: 11px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.director-timeline button { background: var(--comfy-input-bg, #222); color: var(--input-text, #ddd);
  border: 1px solid var(--border-color, #444); border-radius: 4px; padding: 2px 9px; font: inherit; cursor: pointer; white-space: nowrap; }
.director-timeline button:hover { border-color: #777; background: #2c2c2c; }
.director-timeline button:disabled { opacity: .4; cursor: default; }
.director-timeline canvas { width: 100%; height: ${CANVAS_H}px; display: block; border-radius: 6px;
  background: ${COLORS.bg}; outline: none; cursor: default; touch-action: none; }
.director-timeline canvas:focus-visible { box-shadow: 0 0 0 1px #4a7bd0; }
.director-timeline .dt-editor { display: flex; flex-direction: column; gap: 5px; }
.director-timeline .dt-row { display: flex; align-items: center; gap: 8px; min-height: 26px; }
.director-timeline .dt-id { font-weight: 600; color: var(--descrip-text, #888); padding: 2px 8px; border-radius: 10px; background: #2a2a2a; white-space: nowrap; }
.director-timeline label { display: flex; align-items: center; gap: 4px; color: var(--descrip-text, #999); white-space: nowrap; }
.director-timeline input, .director-timeline textarea { background: var(--comfy-input-bg, #222); color: var(--input-text, #ddd);
  border: 1px solid var(--border-color, #444); border-radius: 4px; font: inherit; padding: 3px 6px; }
.director-timeline input[type=number] { width: 64px; }
.director-timeline input:focus, .director-timeline textarea:focus { outline: none; border-color: #4a7bd0; }
.director-timeline textarea { width: 100%; resize: none; height: 44px; }
.director-timeline input:disabled, .director-timeline textarea:disabled { opacity: .55; }
.director-timeline .dt-time { color: var(--descrip-text, #999); min-width: 52px; font-variant-numeric: tabular-nums; }
.director-timeline .dt-msg { color: var(--descrip-text, #888); padding: 4px 2px; }
.director-timeline .dt-msg.dt-error { color: ${COLORS.problem}; }
`;

function injectStyle() {
  if (document.getElementById("director-timeline-style")) return;
  const style = document.createElement("style");
  style.id = "director-timeline-style";
  style.textContent = CSS;
  document.head.appendChild(style);
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) node.append(c);
  return node;
}

function thumbUrl(thumb) {
  const q = new URLSearchParams({ filename: thumb.filename, subfolder: thumb.subfolder ?? "", type: thumb.type ?? "temp" });
  return api.apiURL(`/view?${q}`);
}

function shortId(id, wide) {
  const [src, n] = id.split(":");
  if (wide) return id;
  return { chain: "c", image: "", text: "t" }[src] + n;
}

class TimelineEditor {
  constructor(node) {
    this.node = node;
    this.view = null; // the node's last ui output (thumbnails, chain/batch keyframes)
    this.selected = null;
    this.drag = null;
    this.hoverFrame = null;
    this.images = new Map();
    this.hits = [];
    this.lastKey = "";
    injectStyle();
    this.build();
    this.widget = node.addDOMWidget("timeline_editor", "director_timeline", this.root, {
      serialize: false,
      hideOnZoom: false,
      getMinHeight: () => WIDGET_H,
      getMaxHeight: () => WIDGET_H,
      margin: 8,
    });
    this.widget.serialize = false;
    this.resizeObserver = new ResizeObserver(() => this.render());
    this.resizeObserver.observe(this.canvas);
  }

  // --- the backing widgets -------------------------------------------------------------------
  widgetNamed(name) {
    return this.node.widgets?.find((w) => w.name === name);
  }
  get text() {
    return String(this.widgetNamed("timeline")?.value ?? "");
  }
  get duration() {
    const d = parseInt(String(this.widgetNamed("duration")?.value ?? "5"), 10);
    return d === 10 ? 10 : 5;
  }
  get maxKeyframes() {
    return Number(this.widgetNamed("max_keyframes")?.value ?? 16);
  }
  state() {
    try {
      return { timeline: parseTimeline(this.text), error: null };
    } catch (e) {
      return { timeline: { entries: [] }, error: e.message };
    }
  }
  items() {
    const { timeline } = this.state();
    const items = displayItems(timeline, this.view, this.duration);
    if (this.drag) {
      const it = items.find((i) => i.id === this.drag.id);
      if (it) it.frame = it.drawFrame = this.drag.frame;
    }
    return items;
  }
  write(timeline) {
    const w = this.widgetNamed("timeline");
    if (!w) return;
    const text = serializeTimeline(timeline);
    if (text === w.value) return;
    w.value = text;
    w.callback?.(text);
    this.node.setDirtyCanvas?.(true, true);
    // one undo step per edit (the tracker would otherwise notice only at the next click elsewhere)
    app.extensionManager?.workflow?.activeWorkflow?.changeTracker?.checkState?.();
    this.render();
  }
  edit(fn) {
    const { timeline, error } = this.state();
    if (error) return;
    this.write(fn(timeline));
  }

  // --- DOM ------------------------------------------------------------------------------------
  build() {
    this.info = el("span", { className: "dt-info" });
    this.addButton = el("button", { textContent: "+ Direction", title: "Add a direction-only keyframe in the widest gap (or double-click the track)" });
    this.addButton.addEventListener("click", () => this.addText(null));
    this.jsonButton = el("button", { textContent: "JSON", title: "Show or hide the timeline JSON (what a headless prompt sets)" });
    this.jsonButton.addEventListener("click", () => this.toggleJson());
    const hint = el("span", { className: "dt-hint", textContent: "drag to move · ←/→ 1 frame · shift 1 s · del" });
    this.canvas = el("canvas", { tabIndex: 0 });
    this.idBadge = el("span", { className: "dt-id" });
    this.frameInput = el("input", { type: "number", min: 0, step: 1, title: "Frame on the 24 fps grid" });
    this.timeText = el("span", { className: "dt-time" });
    this.strengthInput = el("input", { type: "number", min: 0, max: 1, step: 0.05, title: "How strongly the keyframe is enforced (0..1)" });
    this.holdInput = el("input", { type: "number", min: 0, step: 0.05, title: "Seconds the image is held still" });
    this.skipButton = el("button");
    this.resetButton = el("button", { textContent: "Reset", title: "Back to its default place and values" });
    this.direction = el("textarea", { placeholder: "Direction at this keyframe: what happens, how the camera moves…", spellcheck: true });
    this.message = el("div", { className: "dt-msg" });
    this.editRows = el(
      "div",
      { className: "dt-editor" },
      el("div", { className: "dt-row" }, this.idBadge, el("label", {}, "frame", this.frameInput), this.timeText,
        el("label", {}, "strength", this.strengthInput), el("label", {}, "hold", this.holdInput, "s"),
        el("span", { className: "dt-spacer" }), this.resetButton, this.skipButton),
      this.direction,
    );
    this.root = el(
      "div",
      { className: "director-timeline" },
      el("div", { className: "dt-bar" }, this.info, el("span", { className: "dt-spacer" }), hint, this.jsonButton, this.addButton),
      this.canvas,
      this.message,
      this.editRows,
    );
    // keys typed here belong to the widget, not to ComfyUI's shortcuts (Delete would remove the
    // node); only undo/redo on the timeline itself goes on to ComfyUI (text fields undo their text)
    const ownKeys = (e) => {
      const undo = (e.ctrlKey || e.metaKey) && ["z", "y"].includes(e.key.toLowerCase());
      if (!(undo && e.target === this.canvas)) e.stopPropagation();
    };
    this.root.addEventListener("keydown", ownKeys);
    this.root.addEventListener("keyup", ownKeys);
    this.canvas.addEventListener("keydown", (e) => this.onKey(e));
    this.canvas.addEventListener("pointerdown", (e) => this.onPointerDown(e));
    this.canvas.addEventListener("pointermove", (e) => this.onPointerMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.onPointerUp(e));
    this.canvas.addEventListener("pointercancel", () => this.cancelDrag());
    this.canvas.addEventListener("pointerleave", () => {
      this.hoverFrame = null;
      this.render();
    });
    this.canvas.addEventListener("dblclick", (e) => this.onDoubleClick(e));
    this.direction.addEventListener("input", () => {
      if (this.selected) this.edit((t) => setField(t, this.selected, "direction", this.direction.value));
    });
    this.frameInput.addEventListener("change", () => {
      const v = Number(this.frameInput.value);
      if (this.selected && Number.isFinite(v)) this.moveTo(this.selected, v, 1);
    });
    this.strengthInput.addEventListener("change", () => {
      const v = Math.min(Math.max(Number(this.strengthInput.value), 0), 1);
      if (this.selected && Number.isFinite(v)) this.edit((t) => setField(t, this.selected, "strength", v));
    });
    this.holdInput.addEventListener("change", () => {
      const v = Math.min(Math.max(Number(this.holdInput.value), 0), this.duration);
      if (this.selected && Number.isFinite(v)) this.edit((t) => setField(t, this.selected, "hold", v));
    });
    this.skipButton.addEventListener("click", () => this.deleteSelected());
    this.resetButton.addEventListener("click", () => {
      if (this.selected) this.edit((t) => resetKeyframe(t, this.selected));
    });
  }

  // --- geometry -------------------------------------------------------------------------------
  metrics() {
    const w = this.canvas.clientWidth || 600;
    const scale = makeScale({ duration: this.duration, x0: PAD_X, width: w - 2 * PAD_X });
    const bandTop = CANVAS_H - BAND_H - 18;
    return { w, scale, bandTop, bandMid: bandTop + BAND_H / 2, thumbsBottom: bandTop - 22 };
  }
  eventX(e) {
    const r = this.canvas.getBoundingClientRect();
    const k = r.width ? this.canvas.clientWidth / r.width : 1; // the canvas is scaled with the graph zoom
    return { x: (e.clientX - r.left) * k, y: (e.clientY - r.top) * k };
  }
  hitTest(x, y) {
    for (let i = this.hits.length - 1; i >= 0; i--) {
      const h = this.hits[i];
      if (x >= h.x0 && x <= h.x1 && y >= h.y0 && y <= h.y1) return h.id;
    }
    const { scale, bandTop } = this.metrics();
    if (y < bandTop - 8 || y > bandTop + BAND_H + 4) return null;
    let best = null;
    for (const it of this.items()) {
      const d = Math.abs(scale.frameToX(it.drawFrame) - x);
      if (d <= 8 && (!best || d < best.d)) best = { id: it.id, d };
    }
    return best?.id ?? null;
  }

  // --- interaction ----------------------------------------------------------------------------
  select(id) {
    this.selected = id;
    this.render();
  }
  moveTo(id, frame, direction) {
    const items = this.items();
    const it = items.find((i) => i.id === id);
    if (!it) return;
    const target = it.skip ? snapFrame(frame, this.duration) : freeFrame(frame, takenFrames(items, id), this.duration, direction);
    if (target === null) return;
    this.edit((t) => moveKeyframe(t, id, target, this.duration));
  }
  addText(frame) {
    const items = this.items();
    const at = frame ?? widestGapFrame(items.filter((i) => !i.skip).map((i) => i.frame), this.duration);
    const { timeline, error } = this.state();
    if (error) return;
    try {
      const res = addTextKeyframe(timeline, at, this.duration, takenFrames(items));
      this.selected = res.id;
      this.write(res.timeline);
      this.direction.focus();
    } catch (e) {
      this.flash(e.message);
    }
  }
  deleteSelected() {
    if (!this.selected) return;
    const id = this.selected;
    if (sourceOf(id) === "text") this.selected = null;
    this.edit((t) => deleteKeyframe(t, id));
  }
  toggleJson() {
    const w = this.widgetNamed("timeline");
    if (!w) return;
    w.hidden = !w.hidden;
    this.node.setSize([this.node.size[0], this.node.computeSize()[1]]);
    this.node.setDirtyCanvas?.(true, true);
  }
  flash(text) {
    this.message.textContent = text;
    this.message.style.display = "";
    this.message.classList.add("dt-error");
  }
  onKey(e) {
    const step = e.shiftKey ? FPS : 1;
    const it = this.items().find((i) => i.id === this.selected);
    if ((e.key === "ArrowLeft" || e.key === "ArrowRight") && it) {
      const dir = e.key === "ArrowLeft" ? -1 : 1;
      this.moveTo(it.id, it.frame + dir * step, dir);
    } else if ((e.key === "Delete" || e.key === "Backspace") && it) {
      this.deleteSelected();
    } else if (e.key === "Escape") {
      this.select(null);
    } else if (e.key === "Tab" && !e.ctrlKey) {
      const items = this.items();
      if (!items.length) return;
      const n = items.length;
      const i = items.findIndex((x) => x.id === this.selected);
      const next = i < 0 ? (e.shiftKey ? n - 1 : 0) : (i + (e.shiftKey ? -1 : 1) + n) % n;
      this.select(items[next].id);
    } else return;
    e.preventDefault();
  }
  onPointerDown(e) {
    if (e.button !== 0) return;
    this.canvas.focus({ preventScroll: true });
    const { x, y } = this.eventX(e);
    const id = this.hitTest(x, y);
    this.selected = id;
    if (id) {
      const it = this.items().find((i) => i.id === id);
      this.drag = { id, startX: x, startFrame: it.frame, frame: it.frame, skip: it.skip };
      this.canvas.setPointerCapture(e.pointerId);
      this.canvas.style.cursor = "grabbing";
    }
    e.preventDefault();
    e.stopPropagation();
    this.render();
  }
  onPointerMove(e) {
    const { x } = this.eventX(e);
    const { scale } = this.metrics();
    if (this.drag) {
      const delta = (x - this.drag.startX) / scale.pxPerFrame;
      const want = snapFrame(this.drag.startFrame + delta, this.duration);
      const dir = want >= this.drag.frame ? 1 : -1;
      const items = displayItems(this.state().timeline, this.view, this.duration);
      const target = this.drag.skip ? want : freeFrame(want, takenFrames(items, this.drag.id), this.duration, dir);
      if (target !== null && target !== this.drag.frame) {
        this.drag.frame = target;
        this.render();
      }
      e.stopPropagation();
      return;
    }
    const frame = x >= scale.x0 - 4 && x <= scale.x0 + scale.width + 4 ? scale.xToFrame(x) : null;
    if (frame !== this.hoverFrame) {
      this.hoverFrame = frame;
      this.render();
    }
  }
  onPointerUp(e) {
    if (!this.drag) return;
    const { id, frame, startFrame } = this.drag;
    this.drag = null;
    this.canvas.style.cursor = "";
    if (this.canvas.hasPointerCapture?.(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    if (frame !== startFrame) this.edit((t) => moveKeyframe(t, id, frame, this.duration));
    else this.render();
    e.stopPropagation();
  }
  cancelDrag() {
    this.drag = null;
    this.canvas.style.cursor = "";
    this.render();
  }
  onDoubleClick(e) {
    const { x, y } = this.eventX(e);
    if (this.hitTest(x, y)) return;
    const { scale } = this.metrics();
    this.addText(scale.xToFrame(x));
  }

  // --- drawing --------------------------------------------------------------------------------
  image(thumb) {
    if (!thumb?.filename) return null;
    let img = this.images.get(thumb.filename);
    if (!img) {
      img = new Image();
      img.onload = () => this.render();
      img.src = thumbUrl(thumb);
      this.images.set(thumb.filename, img);
    }
    return img.complete && img.naturalWidth ? img : null;
  }

  /** Redraw when something the widget shows changed (called on every canvas frame; cheap). */
  refreshIfChanged() {
    if (this.stateKey() !== this.lastKey) this.render();
  }

  stateKey() {
    return `${this.text}|${this.duration}|${this.maxKeyframes}|${app.canvas?.ds?.scale ?? 1}`;
  }

  render() {
    this.lastKey = this.stateKey();
    const { error } = this.state();
    const items = this.items();
    if (this.selected && !items.some((i) => i.id === this.selected)) this.selected = null;
    this.drawCanvas(items);
    this.updateBar(items, error);
    this.updateEditor(items, error);
  }

  updateBar(items, error) {
    const d = this.duration;
    const active = items.filter((i) => !i.skip).length;
    const over = active > this.maxKeyframes;
    this.info.innerHTML = "";
    this.info.append(
      el("b", { textContent: `${d} s` }),
      ` · frames 0–${lastFrame(d)} · ${FPS} fps · `,
      el("span", { className: over ? "dt-over" : "", textContent: `${active} keyframe${active === 1 ? "" : "s"}${over ? ` (limit ${this.maxKeyframes})` : ""}` }),
    );
    this.addButton.disabled = !!error;
  }

  updateEditor(items, error) {
    const it = items.find((i) => i.id === this.selected);
    this.editRows.style.display = error ? "none" : "";
    const problem = error
      ? `The timeline JSON cannot be read: ${error}`
      : it?.problem === "missing"
        ? `${it.id} is not in the last run's inputs: Reset or delete it, or connect it.`
        : it?.problem === "outside"
          ? `${it.id} sits on frame ${it.frame}, outside the ${this.duration} s clip (frames 0–${lastFrame(this.duration)}).`
          : "";
    this.message.textContent = problem;
    this.message.style.display = problem ? "" : "none";
    this.message.classList.toggle("dt-error", !!problem);
    const fields = [this.frameInput, this.strengthInput, this.holdInput, this.direction];
    for (const f of fields) f.disabled = !it;
    this.skipButton.style.display = it ? "" : "none";
    this.resetButton.style.display = it && sourceOf(it.id) !== "text" && it.placed ? "" : "none";
    if (!it) {
      this.idBadge.textContent = "no keyframe selected";
      this.idBadge.style.color = "";
      for (const f of fields) f.value = "";
      this.timeText.textContent = "";
      this.direction.placeholder = this.view || items.length
        ? "Click a keyframe to edit its frame and direction · double-click the track to add a direction keyframe."
        : "Connect images and/or a Keyframe chain and run once to see them here · double-click the track to add a direction keyframe.";
      return;
    }
    const src = sourceOf(it.id);
    this.idBadge.textContent = it.id;
    this.idBadge.style.color = COLORS.source[src];
    this.direction.placeholder = "Direction at this keyframe: what happens, how the camera moves…";
    const active = document.activeElement;
    if (active !== this.frameInput) {
      this.frameInput.max = lastFrame(this.duration);
      this.frameInput.value = String(it.frame);
    }
    this.timeText.textContent = formatTime(it.frame);
    if (active !== this.strengthInput) this.strengthInput.value = String(it.strength);
    if (active !== this.holdInput) {
      this.holdInput.max = this.duration;
      this.holdInput.value = String(it.hold);
    }
    if (active !== this.direction) this.direction.value = it.direction ?? "";
    this.skipButton.textContent = src === "text" ? "Delete" : it.skip ? "Restore" : "Skip";
    this.skipButton.title = src === "text" ? "Delete this direction keyframe" : it.skip ? "Use this keyframe again" : "Leave this keyframe out of the shot";
    this.direction.disabled = it.skip;
  }

  drawCanvas(items) {
    const c = this.canvas;
    // backing pixels follow the screen size (device pixels x graph zoom) so the timeline stays crisp
    const shown = c.getBoundingClientRect().width;
    const zoom = shown && c.clientWidth ? Math.min(Math.max(shown / c.clientWidth, 0.5), 4) : 1;
    const dpr = (window.devicePixelRatio || 1) * zoom;
    const { w, scale, bandTop, bandMid, thumbsBottom } = this.metrics();
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(CANVAS_H * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(CANVAS_H * dpr);
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, CANVAS_H);
    g.fillStyle = COLORS.bg;
    g.fillRect(0, 0, w, CANVAS_H);
    this.drawRuler(g, scale, bandTop);
    this.hits = [];
    this.drawThumbs(g, items, scale, bandTop, thumbsBottom);
    this.drawMarkers(g, items, scale, bandMid);
    this.drawCursor(g, items, scale, bandTop);
  }

  drawRuler(g, scale, bandTop) {
    const x0 = scale.frameToX(0);
    const x1 = scale.frameToX(scale.lastFrame);
    g.fillStyle = COLORS.band;
    roundRect(g, x0 - 6, bandTop, x1 - x0 + 12, BAND_H, 4);
    g.fill();
    g.strokeStyle = COLORS.bandEdge;
    g.lineWidth = 1;
    g.stroke();
    g.font = "10px system-ui, sans-serif";
    g.textAlign = "center";
    g.textBaseline = "top";
    for (const t of gridTicks(scale.duration, scale.pxPerFrame)) {
      const x = Math.round(scale.frameToX(t.frame)) + 0.5;
      const len = t.kind === "second" ? BAND_H : t.kind === "half" ? 9 : 5;
      g.strokeStyle = t.kind === "second" ? COLORS.tickSecond : t.kind === "half" ? COLORS.tickHalf : COLORS.tickFrame;
      g.beginPath();
      g.moveTo(x, bandTop + BAND_H);
      g.lineTo(x, bandTop + BAND_H - len);
      g.stroke();
      if (t.label) {
        g.fillStyle = COLORS.label;
        g.fillText(t.label, x, bandTop + BAND_H + 4);
      }
    }
  }

  drawThumbs(g, items, scale, bandTop, bottom) {
    if (!items.length) return;
    const { w } = this.metrics();
    const sized = items.find((i) => i.width && i.height);
    const aspect = sized ? sized.height / sized.width : 9 / 16;
    const labelH = 13;
    const area = bottom - 6;
    // one lane of thumbnails, or two staggered lanes when that makes them clearly bigger
    let best = null;
    for (const lanes of [1, 2]) {
      const laneH = area / lanes;
      let tw = thumbWidth(Math.ceil(items.length / lanes), w - 8, GAP, 20, 160);
      tw = Math.min(tw, Math.floor((laneH - labelH - 4) / aspect));
      if (!best || tw > best.tw + 8) best = { lanes, laneH, tw, th: Math.round(tw * aspect) };
    }
    const { lanes, laneH, tw, th } = best;
    const placed = [];
    for (let lane = 0; lane < lanes; lane++) {
      const laneItems = items.filter((_, i) => i % lanes === lane);
      const lefts = layoutThumbs(laneItems.map((it) => scale.frameToX(it.drawFrame)), tw, GAP, 4, w - 4);
      const top = bottom - (lanes - lane) * laneH + (laneH - th - labelH);
      laneItems.forEach((it, k) => placed.push({ it, left: lefts[k], top }));
    }
    for (const p of placed) this.drawLeader(g, p.it, p.left, p.top, tw, th, scale, bandTop);
    for (const p of placed) this.drawThumb(g, p.it, p.left, p.top, tw, th);
  }

  drawLeader(g, it, left, top, tw, th, scale, bandTop) {
    const sel = it.id === this.selected;
    g.strokeStyle = sel ? COLORS.selected : it.problem ? COLORS.problem : it.skip ? COLORS.skipped : COLORS.source[it.source];
    g.globalAlpha = sel ? 0.9 : 0.45;
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(left + tw / 2, top + th + 13);
    g.lineTo(scale.frameToX(it.drawFrame), bandTop - 2);
    g.stroke();
    g.globalAlpha = 1;
  }

  drawThumb(g, it, left, top, tw, th) {
    const sel = it.id === this.selected;
    const color = it.problem ? COLORS.problem : it.skip ? COLORS.skipped : COLORS.source[it.source];
    g.globalAlpha = it.skip ? 0.35 : 1;
    g.fillStyle = COLORS.thumbBg;
    g.fillRect(left, top, tw, th);
    const img = this.image(it.thumb);
    if (img) {
      const s = Math.min(tw / img.naturalWidth, th / img.naturalHeight);
      const iw = img.naturalWidth * s;
      const ih = img.naturalHeight * s;
      g.drawImage(img, left + (tw - iw) / 2, top + (th - ih) / 2, iw, ih);
    } else if (it.source === "text") {
      g.fillStyle = "rgba(242,184,75,0.10)";
      g.fillRect(left, top, tw, th);
      g.fillStyle = COLORS.source.text;
      g.font = "10px system-ui, sans-serif";
      g.textAlign = "left";
      g.textBaseline = "top";
      wrapText(g, it.direction || "(no direction yet)", left + 4, top + 3, tw - 8, 12, Math.floor((th - 4) / 12));
    } else {
      g.fillStyle = "#444";
      g.font = "10px system-ui, sans-serif";
      g.textAlign = "center";
      g.textBaseline = "middle";
      g.fillText(it.source === "chain" ? "chain" : "image", left + tw / 2, top + th / 2);
    }
    g.lineWidth = sel ? 2 : 1;
    g.strokeStyle = sel ? COLORS.selected : color;
    g.strokeRect(left + 0.5, top + 0.5, tw - 1, th - 1);
    if (it.skip) {
      g.beginPath();
      g.moveTo(left, top + th);
      g.lineTo(left + tw, top);
      g.stroke();
    }
    g.globalAlpha = 1;
    g.fillStyle = sel ? COLORS.selected : COLORS.label;
    g.font = `${sel ? "600 " : ""}10px system-ui, sans-serif`;
    g.textAlign = "center";
    g.textBaseline = "top";
    g.fillText(shortId(it.id, tw >= 52), left + tw / 2, top + th + 2);
    this.hits.push({ id: it.id, x0: left, x1: left + tw, y0: top, y1: top + th + 13 });
  }

  drawMarkers(g, items, scale, mid) {
    const order = [...items].sort((a, b) => (a.id === this.selected) - (b.id === this.selected));
    for (const it of order) {
      const x = scale.frameToX(it.drawFrame);
      const sel = it.id === this.selected;
      const color = it.problem ? COLORS.problem : it.skip ? COLORS.skipped : COLORS.source[it.source];
      const r = sel ? 7 : 5.5;
      g.beginPath();
      g.moveTo(x, mid - r);
      g.lineTo(x + r, mid);
      g.lineTo(x, mid + r);
      g.lineTo(x - r, mid);
      g.closePath();
      if (it.skip) {
        g.fillStyle = COLORS.band;
        g.fill();
        g.strokeStyle = color;
        g.lineWidth = 1.5;
        g.stroke();
      } else {
        g.fillStyle = color;
        g.fill();
        g.strokeStyle = sel ? COLORS.selected : "rgba(0,0,0,0.6)";
        g.lineWidth = sel ? 2 : 1;
        g.stroke();
      }
    }
  }

  drawCursor(g, items, scale, bandTop) {
    const sel = items.find((i) => i.id === this.selected);
    const tag = (frame, color) => {
      const x = scale.frameToX(frame);
      const text = `${frame} · ${formatTime(frame)}`;
      g.font = "600 10px system-ui, sans-serif";
      const tw = g.measureText(text).width + 10;
      const left = Math.min(Math.max(x - tw / 2, 2), this.canvas.clientWidth - tw - 2);
      g.fillStyle = color;
      roundRect(g, left, bandTop - 18, tw, 15, 3);
      g.fill();
      g.fillStyle = "#111";
      g.textAlign = "center";
      g.textBaseline = "middle";
      g.fillText(text, left + tw / 2, bandTop - 10.5);
    };
    if (this.hoverFrame !== null && !this.drag && this.hoverFrame !== sel?.frame) {
      const x = Math.round(scale.frameToX(this.hoverFrame)) + 0.5;
      g.strokeStyle = COLORS.hover;
      g.lineWidth = 1;
      g.beginPath();
      g.moveTo(x, bandTop);
      g.lineTo(x, bandTop + BAND_H);
      g.stroke();
      tag(this.hoverFrame, "#bbb");
    }
    if (sel) tag(sel.drawFrame, sel.problem ? COLORS.problem : COLORS.source[sel.source]);
  }
}

function roundRect(g, x, y, w, h, r) {
  g.beginPath();
  g.moveTo(x + r, y);
  g.arcTo(x + w, y, x + w, y + h, r);
  g.arcTo(x + w, y + h, x, y + h, r);
  g.arcTo(x, y + h, x, y, r);
  g.arcTo(x, y, x + w, y, r);
  g.closePath();
}

function wrapText(g, text, x, y, maxW, lineH, maxLines) {
  const words = text.split(/\s+/);
  let line = "";
  let n = 0;
  for (let i = 0; i < words.length && n < maxLines; i++) {
    const next = line ? `${line} ${words[i]}` : words[i];
    if (g.measureText(next).width > maxW && line) {
      g.fillText(n === maxLines - 1 ? `${line}…` : line, x, y + n * lineH);
      n++;
      line = words[i];
    } else line = next;
  }
  if (line && n < maxLines) g.fillText(line, x, y + n * lineH);
}

app.registerExtension({
  name: "Director.KeyframeTimeline",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE_ID) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      // the raw JSON stays hidden behind the widget's "JSON" button (the canvas renderer does not
      // fold advanced inputs away)
      const json = this.widgets?.find((w) => w.name === "timeline");
      if (json) json.hidden = true;
      this.directorTimeline = new TimelineEditor(this);
      this.setSize([Math.max(this.size[0], 760), Math.max(this.size[1], this.computeSize()[1])]);
      return r;
    };
    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const r = onConfigure?.apply(this, arguments);
      if (this.directorTimeline) {
        this.directorTimeline.view = sessionViews.get(viewKey(this)) ?? this.properties?.[VIEW_PROPERTY] ?? null;
        this.directorTimeline.render();
      }
      return r;
    };
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      const r = onExecuted?.apply(this, arguments);
      const view = output?.[UI_KEY]?.[0];
      if (view && this.directorTimeline) {
        this.properties = this.properties ?? {};
        this.properties[VIEW_PROPERTY] = view;
        sessionViews.set(viewKey(this), view);
        this.directorTimeline.view = view;
        this.directorTimeline.render();
      }
      return r;
    };
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function () {
      const r = onDrawForeground?.apply(this, arguments);
      this.directorTimeline?.refreshIfChanged();
      return r;
    };
    const onRemoved = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function () {
      this.directorTimeline?.resizeObserver.disconnect();
      return onRemoved?.apply(this, arguments);
    };
  },
});
