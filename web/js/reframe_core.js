// Reframe Canvas core: pure functions, no DOM, no ComfyUI. Used by reframe_widget.js and tested with
// `node --test tests/js/`. Mirrors nodes/shot/geometry.py (the one geometry): the same JSON state
// (version 1), the same output sizes, the same presets and the same pixel rounding, checked against
// the same table of cases (tests/js/fixtures/reframe_cases.json).
//
// The rectangle is normalised to the OUTPUT frame: x/w are fractions of its width, y/h of its height,
// origin top-left; x/y in -2..2, w/h in (0, 2]. Pixels: x0 = floor(x * W + 0.5),
// x1 = floor((x + w) * W + 0.5) (same for y with H); at least one pixel wide and tall.

export const STATE_VERSION = 1;
export const STATE_FIELDS = ["version", "aspect_ratio", "x_norm", "y_norm", "w_norm", "h_norm"];
export const ASPECTS = ["9:16", "3:4", "1:1", "4:3", "16:9", "21:9"];
export const RESOLUTIONS = ["360p", "540p", "720p", "1080p"];
export const PRESETS = ["centre fit", "top", "bottom", "left", "right", "custom"];
export const POS_LIMIT = 2;
export const SIZE_LIMIT = 2;
export const SNAP_LINES = [0, 1 / 3, 0.5, 2 / 3, 1];

export class ReframeError extends Error {}

export function aspectValue(aspect) {
  const [a, b] = aspect.split(":").map(Number);
  return a / b;
}

/** Output size: short edge = the resolution, long edge rounded to the nearest even number. */
export function canvasSize(aspect, resolution) {
  if (!ASPECTS.includes(aspect)) throw new ReframeError(`canvas: aspect_ratio '${aspect}' is not one of ${ASPECTS.join(", ")}.`);
  if (!RESOLUTIONS.includes(resolution)) throw new ReframeError(`resolution: '${resolution}' is not one of ${RESOLUTIONS.join(", ")}.`);
  const short = parseInt(resolution, 10);
  const [a, b] = aspect.split(":").map(Number);
  // Python: int(round(short * max / min / 2.0)) * 2, round() halves to even
  const long = pyRound((short * Math.max(a, b)) / Math.min(a, b) / 2) * 2;
  return a >= b ? [long, short] : [short, long];
}

function pyRound(v) {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

const edge = (v, size) => Math.floor(v * size + 0.5);

/** The source's pixel rectangle in an outW x outH frame and the part of the frame it covers. */
export function place(rect, outW, outH) {
  const x0 = edge(rect.x, outW);
  const y0 = edge(rect.y, outH);
  const x1 = Math.max(edge(rect.x + rect.w, outW), x0 + 1);
  const y1 = Math.max(edge(rect.y + rect.h, outH), y0 + 1);
  const visible = [Math.max(0, x0), Math.max(0, y0), Math.min(outW, x1), Math.min(outH, y1)];
  const visiblePixels = Math.max(0, visible[2] - visible[0]) * Math.max(0, visible[3] - visible[1]);
  return { x0, y0, x1, y1, visible, visiblePixels };
}

/** A preset's rectangle: the whole source fitted inside the frame, centred or against one edge. */
export function presetRect(preset, aspect, srcW, srcH) {
  if (!PRESETS.includes(preset) || preset === "custom") throw new ReframeError(`preset: '${preset}' has no fixed rectangle.`);
  const target = aspectValue(aspect);
  const source = srcW / srcH;
  let w, h;
  if (source >= target) {
    w = 1;
    h = target / source;
  } else {
    w = source / target;
    h = 1;
  }
  let x = (1 - w) / 2;
  let y = (1 - h) / 2;
  if (preset === "top") y = 0;
  else if (preset === "bottom") y = 1 - h;
  else if (preset === "left") x = 0;
  else if (preset === "right") x = 1 - w;
  return { x: tidy(x), y: tidy(y), w: tidy(w), h: tidy(h) };
}

const tidy = (v) => (v === 0 ? 0 : v);

/** Same shape as the source within 2 %: nothing to reframe. */
export function sameAspect(aspect, srcW, srcH) {
  return Math.abs(srcW / srcH / aspectValue(aspect) - 1) <= 0.02;
}

function checkNumber(name, v, lo, hi, loOpen) {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ReframeError(`canvas: ${name} must be a finite number, got ${JSON.stringify(v)}.`);
  if (loOpen ? !(v > lo && v <= hi) : !(v >= lo && v <= hi)) {
    throw new ReframeError(`canvas: ${name} ${v} is outside ${loOpen ? `(${lo}, ${hi}]` : `${lo}..${hi}`}.`);
  }
}

/** Parse the JSON state; errors name the field, like the Python core's. */
export function parseState(text) {
  let doc = text;
  if (typeof text === "string") {
    if (!text.trim()) throw new ReframeError('canvas: the state is empty; expected {"version": 1, "aspect_ratio": ..., "x_norm": ..., ...}.');
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new ReframeError(`canvas: the state is not valid JSON (${e.message}).`);
    }
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new ReframeError("canvas: the state must be a JSON object.");
  const unknown = Object.keys(doc).filter((k) => !STATE_FIELDS.includes(k)).sort();
  if (unknown.length) throw new ReframeError(`canvas: unknown field '${unknown[0]}' (fields: ${STATE_FIELDS.join(", ")}).`);
  const missing = STATE_FIELDS.filter((k) => !(k in doc));
  if (missing.length) throw new ReframeError(`canvas: field '${missing[0]}' is missing (fields: ${STATE_FIELDS.join(", ")}).`);
  if (doc.version !== STATE_VERSION) throw new ReframeError(`canvas: state version ${JSON.stringify(doc.version)} is not supported (this Director reads version ${STATE_VERSION}).`);
  if (!ASPECTS.includes(doc.aspect_ratio)) throw new ReframeError(`canvas: aspect_ratio '${doc.aspect_ratio}' is not one of ${ASPECTS.join(", ")}.`);
  checkNumber("x_norm", doc.x_norm, -POS_LIMIT, POS_LIMIT);
  checkNumber("y_norm", doc.y_norm, -POS_LIMIT, POS_LIMIT);
  checkNumber("w_norm", doc.w_norm, 0, SIZE_LIMIT, true);
  checkNumber("h_norm", doc.h_norm, 0, SIZE_LIMIT, true);
  return { aspect: doc.aspect_ratio, rect: { x: doc.x_norm, y: doc.y_norm, w: doc.w_norm, h: doc.h_norm } };
}

/** The JSON state text (schema order, full precision, 1 not 1.0): what the Python core writes. */
export function stateText(state) {
  const n = (v) => String(tidy(v));
  const r = state.rect;
  return `{"version": ${STATE_VERSION}, "aspect_ratio": ${JSON.stringify(state.aspect)}, "x_norm": ${n(r.x)}, "y_norm": ${n(r.y)}, "w_norm": ${n(r.w)}, "h_norm": ${n(r.h)}}`;
}

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

/** The rectangle moved by (dx, dy) of the frame, kept in the allowed range. */
export function moveRect(rect, dx, dy) {
  return { ...rect, x: clamp(rect.x + dx, -POS_LIMIT, POS_LIMIT), y: clamp(rect.y + dy, -POS_LIMIT, POS_LIMIT) };
}

/**
 * The rectangle with one corner (handle "nw" | "ne" | "sw" | "se") dragged by (dx, dy) of the frame;
 * the opposite corner stays put. `lockRatio` (w/h in frame units) keeps the source's shape: the
 * larger of the two moves decides the size.
 */
export function scaleRect(rect, handle, dx, dy, lockRatio = null, minSize = 0.02) {
  const left = handle.includes("w");
  const top = handle.includes("n");
  const ax = left ? rect.x + rect.w : rect.x; // anchor (opposite corner)
  const ay = top ? rect.y + rect.h : rect.y;
  let w = clamp(rect.w + (left ? -dx : dx), minSize, SIZE_LIMIT);
  let h = clamp(rect.h + (top ? -dy : dy), minSize, SIZE_LIMIT);
  if (lockRatio) {
    if (w / rect.w >= h / rect.h) h = w / lockRatio;
    else w = h * lockRatio;
    if (h > SIZE_LIMIT) {
      h = SIZE_LIMIT;
      w = h * lockRatio;
    }
    if (w > SIZE_LIMIT) {
      w = SIZE_LIMIT;
      h = w / lockRatio;
    }
  }
  return { x: clamp(left ? ax - w : ax, -POS_LIMIT, POS_LIMIT), y: clamp(top ? ay - h : ay, -POS_LIMIT, POS_LIMIT), w, h };
}

/**
 * Snap a moved rectangle: its left/centre/right to the frame's edges, thirds and centre (same for
 * top/middle/bottom) when within `tol` of the frame. Returns {rect, guides: {x: [...], y: [...]}}.
 */
export function snapRect(rect, tolX, tolY = tolX) {
  const snapAxis = (pos, size, tol) => {
    let best = null;
    for (const [k, offset] of [[0, 0], [0.5, size / 2], [1, size]]) {
      for (const line of SNAP_LINES) {
        const d = line - (pos + offset);
        if (Math.abs(d) <= tol && (!best || Math.abs(d) < Math.abs(best.d))) best = { d, line, k };
      }
    }
    return best;
  };
  const sx = snapAxis(rect.x, rect.w, tolX);
  const sy = snapAxis(rect.y, rect.h, tolY);
  return {
    rect: { ...rect, x: sx ? rect.x + sx.d : rect.x, y: sy ? rect.y + sy.d : rect.y },
    guides: { x: sx ? [sx.line] : [], y: sy ? [sy.line] : [] },
  };
}

/** Undo/redo of state texts (one entry per finished edit). */
export class History {
  constructor(limit = 100) {
    this.limit = limit;
    this.past = [];
    this.future = [];
  }
  push(text) {
    if (this.past[this.past.length - 1] === text) return;
    this.past.push(text);
    if (this.past.length > this.limit) this.past.shift();
    this.future = [];
  }
  undo(current) {
    if (!this.past.length) return null;
    const prev = this.past.pop();
    this.future.push(current);
    return prev;
  }
  redo(current) {
    if (!this.future.length) return null;
    const next = this.future.pop();
    this.past.push(current);
    return next;
  }
  get canUndo() {
    return this.past.length > 0;
  }
  get canRedo() {
    return this.future.length > 0;
  }
}

/** Where the output frame (aspect) fits inside a view of viewW x viewH with `pad` around it. */
export function frameInView(aspect, viewW, viewH, pad = 0) {
  const a = aspectValue(aspect);
  const w0 = viewW - 2 * pad;
  const h0 = viewH - 2 * pad;
  let w = w0;
  let h = w / a;
  if (h > h0) {
    h = h0;
    w = h * a;
  }
  return { x: (viewW - w) / 2, y: (viewH - h) / 2, w, h };
}

// Credits per started output second at 360p/540p/720p/1080p: nodes/shot/request.py's
// CREDITS_REFRAME_PER_SECOND (tests/test_reframe_credits.py reads this literal and compares).
export const CREDITS_REFRAME_PER_SECOND = [10, 20, 40, 120];
export const LUMA_NO_1080P = ["9:16", "3:4"];

/** What Reframe Video shows before it runs: {text, tone, detail} (tones as in credits_core.js). */
export function reframeCreditsNote({ billing, local = false, resolution, aspect = null, seconds = null, cap = 0 }) {
  if (local) return { text: "Local: free", tone: "free", detail: "Your own model on your GPU, as native ComfyUI nodes: no credits." };
  if (!billing) return { text: "Draft: free", tone: "free", detail: "No billing engine connected: the CPU Draft engine makes a preview fill." };
  const idx = RESOLUTIONS.indexOf(resolution);
  if (idx < 0) return { text: "credits: ?", tone: "warn", detail: "Unknown resolution." };
  if (resolution === "1080p" && LUMA_NO_1080P.includes(aspect)) {
    return { text: `1080p ${aspect}: refused`, tone: "warn", detail: `Luma reframes ${LUMA_NO_1080P.join(" and ")} up to 720p.` };
  }
  const rate = CREDITS_REFRAME_PER_SECOND[idx];
  if (seconds == null) return { text: `${rate} credits / s`, tone: "cost", detail: `${resolution}: ${rate} credits per started output second (the source's length).` };
  const credits = rate * Math.ceil(seconds - 1e-9);
  if (cap > 0 && credits > cap) return { text: `${credits} credits > cap ${cap}`, tone: "warn", detail: `the engine's max_credits_per_job is ${cap}.` };
  return { text: `≈ ${credits} credits`, tone: "cost", detail: `${resolution}: ${rate} credits per started second × ${Math.ceil(seconds - 1e-9)} s.` };
}
