// Reframe Canvas widget for the DirectorReframeCanvas node.
//
// A pure view (serialize: false): the node's `canvas` STRING widget holds the JSON state (schema in
// nodes/shot/geometry.py) and its `preset` combo says whether a preset or the drawn rectangle
// counts. The widget draws the output frame and the source's first frame as a rectangle the user
// drags (move) and scales from a corner (aspect locked by default; hold Shift or unlock to stretch),
// snapping to the frame's centre, edges and thirds, with undo/redo. Aspect buttons change the target
// aspect. The source's first frame and size come from the node's ui output (`director_reframe`)
// after a run; before that a 16:9 placeholder stands in. The math lives in reframe_core.js.

import {
  ASPECTS,
  History,
  PRESETS,
  aspectValue,
  canvasSize,
  frameInView,
  moveRect,
  parseState,
  place,
  presetRect,
  sameAspect,
  scaleRect,
  snapRect,
  stateText,
} from "./reframe_core.js";

const { app } = window.comfyAPI.app;
const { api } = window.comfyAPI.api;

const NODE_ID = "DirectorReframeCanvas";
const UI_KEY = "director_reframe";
const VIEW_PROPERTY = "director_reframe_view";
const CANVAS_H = 360;
const WIDGET_H = 472;
const PAD = 14;
const HANDLE = 7;
const SNAP_PX = 7;
const PLACEHOLDER = { width: 1920, height: 1080 };
const COLORS = {
  bg: "#141414",
  frame: "#2a2a2a",
  frameEdge: "#8c8c8c",
  newArea: "rgba(90,169,255,0.10)",
  source: "#5aa9ff",
  handle: "#ffffff",
  guide: "#f2b84b",
  thirds: "rgba(255,255,255,0.10)",
  text: "#9a9a9a",
  warn: "#ff5f56",
};

const CSS = `
.director-reframe { display: flex; flex-direction: column; gap: 6px; box-sizing: border-box; width: 100%; height: 100%;
  font: 12px/1.3 var(--comfy-font, system-ui, sans-serif); color: var(--input-text, #ddd); }
.director-reframe * { box-sizing: border-box; }
.director-reframe .dr-bar { display: flex; align-items: center; gap: 4px; flex-wrap: wrap; min-height: 24px; }
.director-reframe .dr-sep { width: 8px; }
.director-reframe .dr-spacer { flex: 1; }
.director-reframe button { background: var(--comfy-input-bg, #222); color: var(--input-text, #ddd);
  border: 1px solid var(--border-color, #444); border-radius: 4px; padding: 2px 7px; font: inherit; cursor: pointer; white-space: nowrap; }
.director-reframe button:hover { border-color: #777; background: #2c2c2c; }
.director-reframe button.dr-on { border-color: #5aa9ff; color: #fff; background: #203550; }
.director-reframe button:disabled { opacity: .4; cursor: default; }
.director-reframe canvas { width: 100%; height: ${CANVAS_H}px; display: block; border-radius: 6px; background: ${COLORS.bg};
  outline: none; touch-action: none; }
.director-reframe canvas:focus-visible { box-shadow: 0 0 0 1px #4a7bd0; }
.director-reframe .dr-info { color: var(--descrip-text, #999); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.director-reframe .dr-info b { color: var(--input-text, #ddd); font-weight: 600; }
.director-reframe .dr-error { color: ${COLORS.warn}; }
`;

function injectStyle() {
  if (document.getElementById("director-reframe-style")) return;
  const style = document.createElement("style");
  style.id = "director-reframe-style";
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

class ReframeEditor {
  constructor(node) {
    this.node = node;
    this.view = null;
    this.locked = true;
    this.snap = true;
    this.drag = null;
    this.guides = { x: [], y: [] };
    this.history = new History();
    this.image = null;
    this.lastKey = "";
    injectStyle();
    this.build();
    this.widget = node.addDOMWidget("reframe_editor", "director_reframe", this.root, {
      serialize: false,
      hideOnZoom: false,
      getMinHeight: () => WIDGET_H,
      getMaxHeight: () => WIDGET_H,
      margin: 8,
    });
    this.widget.serialize = false;
    this.resizeObserver = new ResizeObserver(() => this.render());
    this.resizeObserver.observe(this.canvas);
    // the Vue renderer draws no canvas foreground: notice outside edits (combo, JSON, undo) here
    this.timer = setInterval(() => this.refreshIfChanged(), 250);
  }

  // --- the backing widgets -------------------------------------------------------------------
  widgetNamed(name) {
    return this.node.widgets?.find((w) => w.name === name);
  }
  get text() {
    return String(this.widgetNamed("canvas")?.value ?? "");
  }
  get preset() {
    return String(this.widgetNamed("preset")?.value ?? "custom");
  }
  get resolution() {
    return String(this.widgetNamed("resolution")?.value ?? "720p");
  }
  get source() {
    const s = this.view?.source;
    return s?.width && s?.height ? s : null;
  }
  sourceSize() {
    const s = this.source ?? PLACEHOLDER;
    return [s.width, s.height];
  }
  /** {aspect, rect, error}: the rectangle shown (a preset's, computed from the source, or the drawn one). */
  state() {
    let parsed;
    try {
      parsed = parseState(this.text);
    } catch (e) {
      return { aspect: "9:16", rect: null, error: e.message };
    }
    if (this.drag) return { aspect: parsed.aspect, rect: this.drag.rect, error: null };
    const rect = this.preset === "custom" ? parsed.rect : presetRect(this.preset, parsed.aspect, ...this.sourceSize());
    return { aspect: parsed.aspect, rect, error: null };
  }
  setWidget(name, value) {
    const w = this.widgetNamed(name);
    if (!w || w.value === value) return false;
    w.value = value;
    w.callback?.(value);
    return true;
  }
  /** Write a new state (one undo step); `preset` defaults to "custom" (the user drew it). */
  write(aspect, rect, preset = "custom") {
    const before = JSON.stringify([this.text, this.preset]);
    const text = stateText({ aspect, rect });
    if (before === JSON.stringify([text, preset])) return;
    this.history.push(before);
    this.setWidget("canvas", text);
    this.setWidget("preset", preset);
    this.node.setDirtyCanvas?.(true, true);
    app.extensionManager?.workflow?.activeWorkflow?.changeTracker?.checkState?.();
    this.render();
  }
  restore(entry) {
    if (!entry) return;
    const [text, preset] = JSON.parse(entry);
    this.setWidget("canvas", text);
    this.setWidget("preset", preset);
    this.node.setDirtyCanvas?.(true, true);
    this.render();
  }
  undo() {
    this.restore(this.history.undo(JSON.stringify([this.text, this.preset])));
  }
  redo() {
    this.restore(this.history.redo(JSON.stringify([this.text, this.preset])));
  }

  // --- DOM ------------------------------------------------------------------------------------
  build() {
    this.aspectButtons = ASPECTS.map((a) => {
      const b = el("button", { textContent: a, title: `Target aspect ratio ${a}` });
      b.addEventListener("click", () => this.setAspect(a));
      return b;
    });
    this.presetButtons = PRESETS.filter((p) => p !== "custom").map((p) => {
      const b = el("button", { textContent: p, title: `The whole source, ${p === "centre fit" ? "centred" : `against the ${p} edge`}` });
      b.addEventListener("click", () => this.applyPreset(p));
      return b;
    });
    this.lockButton = el("button", { title: "Keep the source's shape while scaling (Shift while dragging: the other way)" });
    this.lockButton.addEventListener("click", () => {
      this.locked = !this.locked;
      this.render();
    });
    this.snapButton = el("button", { title: "Snap to the frame's centre, edges and thirds" });
    this.snapButton.addEventListener("click", () => {
      this.snap = !this.snap;
      this.render();
    });
    this.undoButton = el("button", { textContent: "↶", title: "Undo (Ctrl+Z)" });
    this.undoButton.addEventListener("click", () => this.undo());
    this.redoButton = el("button", { textContent: "↷", title: "Redo (Ctrl+Y)" });
    this.redoButton.addEventListener("click", () => this.redo());
    this.canvas = el("canvas", { tabIndex: 0 });
    this.info = el("div", { className: "dr-info" });
    this.root = el(
      "div",
      { className: "director-reframe" },
      el("div", { className: "dr-bar" }, ...this.aspectButtons, el("span", { className: "dr-spacer" }), this.undoButton, this.redoButton),
      el("div", { className: "dr-bar" }, ...this.presetButtons, el("span", { className: "dr-spacer" }), this.lockButton, this.snapButton),
      this.canvas,
      this.info,
    );
    const ownKeys = (e) => e.stopPropagation();
    this.root.addEventListener("keydown", ownKeys);
    this.root.addEventListener("keyup", ownKeys);
    this.canvas.addEventListener("keydown", (e) => this.onKey(e));
    this.canvas.addEventListener("pointerdown", (e) => this.onPointerDown(e));
    this.canvas.addEventListener("pointermove", (e) => this.onPointerMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.onPointerUp(e));
    this.canvas.addEventListener("pointercancel", () => {
      this.drag = null;
      this.render();
    });
  }

  setAspect(aspect) {
    if (this.state().error) return;
    // a new frame shape: the source is fitted again (the preset, or centre fit for a drawn rectangle)
    const preset = this.preset === "custom" ? "centre fit" : this.preset;
    this.write(aspect, presetRect(preset, aspect, ...this.sourceSize()), preset);
  }
  applyPreset(preset) {
    const { aspect, error } = this.state();
    if (error) return;
    this.write(aspect, presetRect(preset, aspect, ...this.sourceSize()), preset);
  }

  // --- geometry -------------------------------------------------------------------------------
  metrics(aspect) {
    const w = this.canvas.clientWidth || 600;
    return { w, frame: frameInView(aspect, w, CANVAS_H, PAD) };
  }
  toView(rect, frame) {
    return { x: frame.x + rect.x * frame.w, y: frame.y + rect.y * frame.h, w: rect.w * frame.w, h: rect.h * frame.h };
  }
  eventPoint(e) {
    const r = this.canvas.getBoundingClientRect();
    const k = r.width ? this.canvas.clientWidth / r.width : 1; // the widget is scaled with the graph zoom
    return { x: (e.clientX - r.left) * k, y: (e.clientY - r.top) * k };
  }
  hit(p, v) {
    for (const [name, hx, hy] of [["nw", v.x, v.y], ["ne", v.x + v.w, v.y], ["sw", v.x, v.y + v.h], ["se", v.x + v.w, v.y + v.h]]) {
      if (Math.abs(p.x - hx) <= HANDLE + 2 && Math.abs(p.y - hy) <= HANDLE + 2) return name;
    }
    if (p.x >= v.x && p.x <= v.x + v.w && p.y >= v.y && p.y <= v.y + v.h) return "move";
    return null;
  }
  lockRatio(aspect) {
    const [sw, sh] = this.sourceSize();
    return sw / sh / aspectValue(aspect);
  }

  // --- interaction ----------------------------------------------------------------------------
  onPointerDown(e) {
    const { aspect, rect, error } = this.state();
    if (error || e.button !== 0) return;
    const { frame } = this.metrics(aspect);
    const p = this.eventPoint(e);
    const what = this.hit(p, this.toView(rect, frame));
    if (!what) return;
    this.canvas.focus();
    this.canvas.setPointerCapture?.(e.pointerId);
    this.drag = { what, start: p, origin: { ...rect }, rect: { ...rect }, aspect, frame, moved: false };
    e.preventDefault();
    e.stopPropagation();
  }
  onPointerMove(e) {
    const p = this.eventPoint(e);
    if (!this.drag) {
      const { aspect, rect, error } = this.state();
      if (error) return;
      const { frame } = this.metrics(aspect);
      const what = this.hit(p, this.toView(rect, frame));
      this.canvas.style.cursor = !what ? "" : what === "move" ? "move" : what === "nw" || what === "se" ? "nwse-resize" : "nesw-resize";
      return;
    }
    const d = this.drag;
    const dx = (p.x - d.start.x) / d.frame.w;
    const dy = (p.y - d.start.y) / d.frame.h;
    d.moved = d.moved || Math.abs(p.x - d.start.x) + Math.abs(p.y - d.start.y) > 1;
    const lock = this.locked !== e.shiftKey;
    let rect;
    if (d.what === "move") {
      rect = moveRect(d.origin, dx, dy);
      if (this.snap) {
        const s = snapRect(rect, SNAP_PX / d.frame.w, SNAP_PX / d.frame.h);
        rect = s.rect;
        this.guides = s.guides;
      }
    } else {
      rect = scaleRect(d.origin, d.what, dx, dy, lock ? this.lockRatio(d.aspect) : null);
      this.guides = { x: [], y: [] };
    }
    d.rect = rect;
    this.render();
    e.stopPropagation();
  }
  onPointerUp(e) {
    const d = this.drag;
    if (!d) return;
    this.drag = null;
    this.guides = { x: [], y: [] };
    if (this.canvas.hasPointerCapture?.(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    if (d.moved) this.write(d.aspect, d.rect);
    else this.render();
    e.stopPropagation();
  }
  onKey(e) {
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === "z") {
      e.shiftKey ? this.redo() : this.undo();
      e.preventDefault();
      return;
    }
    if ((e.ctrlKey || e.metaKey) && key === "y") {
      this.redo();
      e.preventDefault();
      return;
    }
    const { aspect, rect, error } = this.state();
    if (error) return;
    const [w, h] = canvasSize(aspect, this.resolution);
    const step = e.shiftKey ? 10 : 1; // output pixels
    const moves = { arrowleft: [-step / w, 0], arrowright: [step / w, 0], arrowup: [0, -step / h], arrowdown: [0, step / h] };
    if (moves[key]) {
      this.write(aspect, moveRect(rect, ...moves[key]));
      e.preventDefault();
    }
  }

  // --- drawing --------------------------------------------------------------------------------
  refreshIfChanged() {
    if (!this.root.isConnected) return;
    if (this.stateKey() !== this.lastKey) this.render();
  }
  stateKey() {
    return `${this.text}|${this.preset}|${this.resolution}|${this.view?.source?.filename ?? ""}|${app.canvas?.ds?.scale ?? 1}`;
  }
  sourceImage() {
    const s = this.source;
    if (!s?.filename) return null;
    if (!this.image || this.image.dataset.name !== s.filename) {
      this.image = new Image();
      this.image.dataset.name = s.filename;
      this.image.onload = () => this.render();
      this.image.src = thumbUrl(s);
    }
    return this.image.complete && this.image.naturalWidth ? this.image : null;
  }
  render() {
    this.lastKey = this.stateKey();
    const st = this.state();
    for (const b of this.aspectButtons) b.classList.toggle("dr-on", b.textContent === st.aspect);
    for (const b of this.presetButtons) b.classList.toggle("dr-on", b.textContent === this.preset);
    this.lockButton.textContent = this.locked ? "aspect locked" : "aspect free";
    this.lockButton.classList.toggle("dr-on", this.locked);
    this.snapButton.textContent = "snap";
    this.snapButton.classList.toggle("dr-on", this.snap);
    this.undoButton.disabled = !this.history.canUndo;
    this.redoButton.disabled = !this.history.canRedo;
    this.draw(st);
    this.updateInfo(st);
  }
  updateInfo(st) {
    this.info.innerHTML = "";
    if (st.error) {
      this.info.append(el("span", { className: "dr-error", textContent: `The canvas JSON cannot be read: ${st.error}` }));
      return;
    }
    const [w, h] = canvasSize(st.aspect, this.resolution);
    const p = place(st.rect, w, h);
    const [sw, sh] = this.sourceSize();
    const generated = 1 - p.visiblePixels / (w * h);
    const parts = [
      el("b", { textContent: `${st.aspect} · ${w}×${h}` }),
      ` · source ${p.x1 - p.x0}×${p.y1 - p.y0} at ${p.x0}, ${p.y0}`,
      ` · ${Math.round(generated * 100)}% new · ${this.preset}`,
    ];
    if (!this.source) parts.push(" · run once to see the source (16:9 assumed)");
    else parts.push(` · source ${sw}×${sh}`);
    if (p.visiblePixels === 0) parts.push(el("span", { className: "dr-error", textContent: " · no source in view: refused" }));
    else if (this.source && sameAspect(st.aspect, sw, sh)) parts.push(el("span", { className: "dr-error", textContent: " · same aspect as the source: nothing to reframe" }));
    this.info.append(...parts);
  }
  draw(st) {
    const c = this.canvas;
    const shown = c.getBoundingClientRect().width;
    const zoom = shown && c.clientWidth ? Math.min(Math.max(shown / c.clientWidth, 0.5), 4) : 1;
    const dpr = (window.devicePixelRatio || 1) * zoom;
    const { w, frame } = this.metrics(st.aspect);
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(CANVAS_H * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(CANVAS_H * dpr);
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = COLORS.bg;
    g.fillRect(0, 0, w, CANVAS_H);
    if (!st.rect) return;
    // the output frame; the new area tinted
    g.fillStyle = COLORS.frame;
    g.fillRect(frame.x, frame.y, frame.w, frame.h);
    g.fillStyle = COLORS.newArea;
    g.fillRect(frame.x, frame.y, frame.w, frame.h);
    // the source, drawn where its pixels land (rounded exactly like the engines), cut at the frame
    const [ow, oh] = canvasSize(st.aspect, this.resolution);
    const p = place(st.rect, ow, oh);
    const sx = frame.w / ow;
    const sy = frame.h / oh;
    const v = { x: frame.x + p.x0 * sx, y: frame.y + p.y0 * sy, w: (p.x1 - p.x0) * sx, h: (p.y1 - p.y0) * sy };
    g.save();
    g.beginPath();
    g.rect(frame.x, frame.y, frame.w, frame.h);
    g.clip();
    const img = this.sourceImage();
    if (img) g.drawImage(img, v.x, v.y, v.w, v.h);
    else {
      const grad = g.createLinearGradient(v.x, v.y, v.x + v.w, v.y + v.h);
      grad.addColorStop(0, "#2d4f73");
      grad.addColorStop(1, "#4d3566");
      g.fillStyle = grad;
      g.fillRect(v.x, v.y, v.w, v.h);
      g.fillStyle = "rgba(255,255,255,0.6)";
      g.font = "11px system-ui, sans-serif";
      g.textAlign = "center";
      g.textBaseline = "middle";
      g.fillText("source (run once to see its first frame)", v.x + v.w / 2, v.y + v.h / 2);
    }
    g.restore();
    // the part of the source outside the frame: an outline only
    g.strokeStyle = COLORS.thirds;
    g.lineWidth = 1;
    for (const t of [1 / 3, 2 / 3]) {
      g.beginPath();
      g.moveTo(frame.x + t * frame.w, frame.y);
      g.lineTo(frame.x + t * frame.w, frame.y + frame.h);
      g.moveTo(frame.x, frame.y + t * frame.h);
      g.lineTo(frame.x + frame.w, frame.y + t * frame.h);
      g.stroke();
    }
    g.strokeStyle = COLORS.frameEdge;
    g.strokeRect(frame.x + 0.5, frame.y + 0.5, frame.w - 1, frame.h - 1);
    g.strokeStyle = COLORS.source;
    g.lineWidth = 1.5;
    g.setLineDash(this.drag ? [5, 3] : []);
    g.strokeRect(v.x, v.y, v.w, v.h);
    g.setLineDash([]);
    g.strokeStyle = COLORS.guide;
    g.lineWidth = 1;
    for (const gx of this.guides.x) {
      g.beginPath();
      g.moveTo(frame.x + gx * frame.w, frame.y - 6);
      g.lineTo(frame.x + gx * frame.w, frame.y + frame.h + 6);
      g.stroke();
    }
    for (const gy of this.guides.y) {
      g.beginPath();
      g.moveTo(frame.x - 6, frame.y + gy * frame.h);
      g.lineTo(frame.x + frame.w + 6, frame.y + gy * frame.h);
      g.stroke();
    }
    g.fillStyle = COLORS.handle;
    for (const [hx, hy] of [[v.x, v.y], [v.x + v.w, v.y], [v.x, v.y + v.h], [v.x + v.w, v.y + v.h]]) {
      g.fillRect(hx - HANDLE / 2, hy - HANDLE / 2, HANDLE, HANDLE);
    }
    g.fillStyle = COLORS.text;
    g.font = "10px system-ui, sans-serif";
    g.textAlign = "left";
    g.textBaseline = "top";
    g.fillText(`${st.aspect} ${ow}×${oh}`, frame.x + 4, frame.y + 4);
  }
}

app.registerExtension({
  name: "Director.ReframeCanvas",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE_ID) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      const json = this.widgets?.find((w) => w.name === "canvas");
      if (json) json.hidden = true; // the widget draws it; the JSON stays in the workflow
      this.directorReframe = new ReframeEditor(this);
      this.setSize([Math.max(this.size[0], 520), Math.max(this.size[1], this.computeSize()[1])]);
      return r;
    };
    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const r = onConfigure?.apply(this, arguments);
      if (this.directorReframe) {
        this.directorReframe.view = this.properties?.[VIEW_PROPERTY] ?? null;
        this.directorReframe.render();
      }
      return r;
    };
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      const r = onExecuted?.apply(this, arguments);
      const view = output?.[UI_KEY]?.[0];
      if (view && this.directorReframe) {
        this.properties = this.properties ?? {};
        this.properties[VIEW_PROPERTY] = view;
        this.directorReframe.view = view;
        this.directorReframe.render();
      }
      return r;
    };
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function () {
      const r = onDrawForeground?.apply(this, arguments);
      this.directorReframe?.refreshIfChanged();
      return r;
    };
    const onRemoved = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function () {
      this.directorReframe?.resizeObserver.disconnect();
      clearInterval(this.directorReframe?.timer);
      return onRemoved?.apply(this, arguments);
    };
  },
});
