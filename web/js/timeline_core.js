// Keyframe timeline core: pure functions, no DOM, no ComfyUI. Used by timeline_widget.js and
// tested with `node --test tests/js/`. Mirrors nodes/keyframes/timeline.py: the same JSON schema
// (v1), the same canonical text (byte for byte), the same 24 fps grid and rounding rule
// (frame = floor(seconds * 24 + 0.5); fraction f -> floor(f * last + 0.5)).

export const FPS = 24;
export const SCHEMA_VERSION = 1;
export const SOURCES = ["chain", "image", "text"];
export const ENTRY_FIELDS = ["id", "frame", "direction", "strength", "hold", "skip"];
export const EMPTY_TEXT = `{"v": ${SCHEMA_VERSION}, "keyframes": []}`;

const ID_RE = /^(chain|image|text):(0|[1-9][0-9]{0,5})$/;
const ID_HELP =
  'use "chain:N" (the Nth keyframe of the chain), "image:N" (the Nth image of the batch) ' +
  'or "text:N" (a direction-only keyframe), counting from 0';

export class TimelineError extends Error {}

export function lastFrame(duration) {
  return Math.round(duration) * FPS;
}

export function sourceOf(id) {
  return id.split(":")[0];
}

export function indexOf(id) {
  return Number(id.split(":")[1]);
}

/** Parse timeline JSON text into {entries: [...]}, with the Python core's checks and messages. */
export function parseTimeline(text) {
  if (text == null || (typeof text === "string" && !text.trim())) return { entries: [] };
  let doc = text;
  if (typeof text === "string") {
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new TimelineError(`timeline: not valid JSON (${e.message}).`);
    }
  }
  if (Array.isArray(doc)) doc = { keyframes: doc };
  if (doc === null || typeof doc !== "object") {
    throw new TimelineError(`timeline: expected a JSON object like {"v": 1, "keyframes": [...]}.`);
  }
  const unknown = Object.keys(doc).filter((k) => k !== "v" && k !== "keyframes").sort();
  if (unknown.length) throw new TimelineError(`timeline: unknown field '${unknown[0]}' (fields: v, keyframes).`);
  const version = "v" in doc ? doc.v : SCHEMA_VERSION;
  if (version !== SCHEMA_VERSION) {
    throw new TimelineError(
      `timeline: schema version ${JSON.stringify(version)} is not supported (this Director reads version ${SCHEMA_VERSION}).`,
    );
  }
  const raw = "keyframes" in doc ? doc.keyframes : [];
  if (!Array.isArray(raw)) throw new TimelineError(`timeline: "keyframes" must be a list.`);
  const seen = new Set();
  const entries = raw.map((item, i) => parseEntry(item, i + 1, seen));
  return { entries };
}

function parseEntry(item, n, seen) {
  if (item === null || typeof item !== "object" || Array.isArray(item)) {
    throw new TimelineError(`timeline: entry ${n} must be an object with an "id".`);
  }
  const id = item.id;
  if (typeof id !== "string" || !ID_RE.test(id)) {
    throw new TimelineError(`timeline: entry ${n} has id ${id === undefined ? "nothing" : JSON.stringify(id)}; ${ID_HELP}.`);
  }
  const label = `keyframe ${id}`;
  if (seen.has(id)) throw new TimelineError(`${label}: listed twice in the timeline; keep one entry per keyframe.`);
  seen.add(id);
  const unknown = Object.keys(item).filter((k) => !ENTRY_FIELDS.includes(k)).sort();
  if (unknown.length) {
    throw new TimelineError(`${label}: unknown field '${unknown[0]}' (fields: ${ENTRY_FIELDS.join(", ")}).`);
  }
  const number = (key) => {
    const v = item[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new TimelineError(`${label}: "${key}" must be a number, got ${JSON.stringify(v)}.`);
    }
    return v;
  };
  const direction = item.direction ?? null;
  if (direction !== null && typeof direction !== "string") {
    throw new TimelineError(`${label}: "direction" must be text, got ${JSON.stringify(direction)}.`);
  }
  const skip = item.skip ?? false;
  if (typeof skip !== "boolean") throw new TimelineError(`${label}: "skip" must be true or false, got ${JSON.stringify(skip)}.`);
  const entry = { id, frame: number("frame"), direction, strength: number("strength"), hold: number("hold"), skip };
  if (sourceOf(id) === "text") {
    if (skip) throw new TimelineError(`${label}: a direction-only keyframe cannot be skipped; delete its entry instead.`);
    if (entry.frame === null) throw new TimelineError(`${label}: a direction-only keyframe needs a "frame".`);
  }
  return entry;
}

/** A number as the canonical text writes it; equals Python's format_number (int or repr). */
export function formatNumber(x) {
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e-4 && a < 1e16) return String(x);
  const [mantissa, exp] = x.toExponential().split("e");
  const sign = exp[0] === "-" ? "-" : "+";
  return `${mantissa}e${sign}${exp.replace(/^[+-]/, "").padStart(2, "0")}`;
}

function entryText(e) {
  const parts = [`"id": ${JSON.stringify(e.id)}`];
  if (e.frame !== null && e.frame !== undefined) parts.push(`"frame": ${formatNumber(e.frame)}`);
  if (e.direction !== null && e.direction !== undefined) parts.push(`"direction": ${JSON.stringify(e.direction)}`);
  if (e.strength !== null && e.strength !== undefined) parts.push(`"strength": ${formatNumber(e.strength)}`);
  if (e.hold !== null && e.hold !== undefined) parts.push(`"hold": ${formatNumber(e.hold)}`);
  if (e.skip) parts.push(`"skip": true`);
  return `{${parts.join(", ")}}`;
}

function compareEntries(a, b) {
  const ka = [a.frame === null ? 1 : 0, a.frame ?? 0, SOURCES.indexOf(sourceOf(a.id)), indexOf(a.id)];
  const kb = [b.frame === null ? 1 : 0, b.frame ?? 0, SOURCES.indexOf(sourceOf(b.id)), indexOf(b.id)];
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1;
  return 0;
}

/** The canonical text (one keyframe per line, sorted by frame, fixed key order). */
export function serializeTimeline(timeline) {
  const entries = (timeline?.entries ?? []).map(normalizeEntry);
  if (!entries.length) return EMPTY_TEXT;
  const lines = entries.sort(compareEntries).map((e) => "  " + entryText(e));
  return `{"v": ${SCHEMA_VERSION}, "keyframes": [\n${lines.join(",\n")}\n]}`;
}

function normalizeEntry(e) {
  return {
    id: e.id,
    frame: e.frame ?? null,
    direction: e.direction ?? null,
    strength: e.strength ?? null,
    hold: e.hold ?? null,
    skip: !!e.skip,
  };
}

// --- the 24 fps grid -----------------------------------------------------------------------

/** Snap any frame value to a whole frame inside the clip (halves round up). */
export function snapFrame(frame, duration) {
  return Math.min(Math.max(Math.floor(frame + 0.5), 0), lastFrame(duration));
}

/** position + unit -> frame on the grid, clamped into the clip (for drawing only; Python judges). */
export function positionToFrame(position, unit, duration) {
  const scale = unit === "seconds" ? FPS : unit === "fraction" ? lastFrame(duration) : 1;
  return snapFrame(position * scale, duration);
}

/** Batch images spread evenly from frame 0 to the last frame (Python: default_frames). */
export function defaultFrames(count, duration) {
  const end = lastFrame(duration);
  if (count <= 0) return [];
  if (count === 1) return [0];
  const out = [];
  for (let i = 0; i < count; i++) out.push(Math.floor((2 * i * end + (count - 1)) / (2 * (count - 1))));
  return out;
}

/** Time <-> x mapping of a timeline drawn from x0 to x0 + width (frame 0 at x0, last frame at the end). */
export function makeScale({ duration, x0 = 0, width }) {
  const end = lastFrame(duration);
  const pxPerFrame = width / end;
  return {
    duration,
    x0,
    width,
    lastFrame: end,
    pxPerFrame,
    frameToX: (frame) => x0 + frame * pxPerFrame,
    /** x -> the nearest whole frame, clamped into the clip. */
    xToFrame: (x) => snapFrame((x - x0) / pxPerFrame, duration),
  };
}

/** Ticks for the ruler: every frame when there is room, else coarser; seconds always labelled. */
export function gridTicks(duration, pxPerFrame) {
  const end = lastFrame(duration);
  const steps = [1, 2, 3, 6, 12, 24];
  const minor = steps.find((s) => s * pxPerFrame >= 4) ?? 24;
  const ticks = [];
  for (let f = 0; f <= end; f += minor) {
    const kind = f % FPS === 0 ? "second" : f % (FPS / 2) === 0 ? "half" : "frame";
    ticks.push({ frame: f, kind, label: kind === "second" ? `${f / FPS}s` : null });
  }
  return ticks;
}

export function formatTime(frame) {
  return `${(frame / FPS).toFixed(2)} s`;
}

// --- editing (pure: every function returns a new timeline) ---------------------------------

function withEntry(timeline, id, change) {
  const entries = timeline.entries.map((e) => ({ ...e }));
  let entry = entries.find((e) => e.id === id);
  if (!entry) {
    entry = normalizeEntry({ id });
    entries.push(entry);
  }
  change(entry);
  return { entries };
}

/** Place a keyframe on a frame (snapped and clamped). */
export function moveKeyframe(timeline, id, frame, duration) {
  return withEntry(timeline, id, (e) => {
    e.frame = snapFrame(frame, duration);
  });
}

export function setField(timeline, id, field, value) {
  if (!["direction", "strength", "hold"].includes(field)) throw new TimelineError(`unknown field ${field}`);
  return withEntry(timeline, id, (e) => {
    e[field] = value;
  });
}

/** A new direction-only keyframe at the nearest free frame; returns {timeline, id}. */
export function addTextKeyframe(timeline, frame, duration, taken = new Set(), direction = "") {
  const used = new Set(timeline.entries.filter((e) => sourceOf(e.id) === "text").map((e) => indexOf(e.id)));
  let n = 0;
  while (used.has(n)) n++;
  const id = `text:${n}`;
  const at = freeFrame(frame, taken, duration);
  if (at === null) throw new TimelineError("every frame of the clip already holds a keyframe");
  const entries = [...timeline.entries.map((e) => ({ ...e })), normalizeEntry({ id, frame: at, direction })];
  return { timeline: { entries }, id };
}

/** Delete: a text keyframe disappears; a chain/image keyframe is skipped (again: restored). */
export function deleteKeyframe(timeline, id) {
  if (sourceOf(id) === "text") return { entries: timeline.entries.filter((e) => e.id !== id).map((e) => ({ ...e })) };
  return withEntry(timeline, id, (e) => {
    e.skip = !e.skip;
  });
}

/** Reset a chain/image keyframe to its default place and values (its entry is removed). */
export function resetKeyframe(timeline, id) {
  return { entries: timeline.entries.filter((e) => e.id !== id).map((e) => ({ ...e })) };
}

/** The nearest frame to `frame` that is not taken, searching outwards (ties: `prefer` side). */
export function freeFrame(frame, taken, duration, prefer = 1) {
  const end = lastFrame(duration);
  const start = snapFrame(frame, duration);
  for (let d = 0; d <= end; d++) {
    for (const cand of d === 0 ? [start] : [start + d * prefer, start - d * prefer]) {
      if (cand >= 0 && cand <= end && !taken.has(cand)) return cand;
    }
  }
  return null;
}

/** The middle of the widest stretch of the clip without a keyframe (where "add" puts one). */
export function widestGapFrame(frames, duration) {
  const end = lastFrame(duration);
  const fs = [...new Set(frames)].filter((f) => f >= 0 && f <= end).sort((a, b) => a - b);
  if (!fs.length) return 0;
  let best = { size: fs[0], at: 0 };
  for (let i = 1; i < fs.length; i++) {
    const size = fs[i] - fs[i - 1];
    if (size > best.size) best = { size, at: Math.floor((fs[i] + fs[i - 1]) / 2) };
  }
  if (end - fs[fs.length - 1] > best.size) best = { size: end - fs[fs.length - 1], at: end };
  return best.at;
}

// --- what to draw -----------------------------------------------------------------------------

/**
 * Merge the timeline with what the node reported after its last run (`view`: the ui output
 * `director_timeline[0]`, or null before any run) into drawable keyframes, sorted by frame.
 * Each item: {id, source, frame, placed, skip, direction, strength, hold, thumb, width, height,
 * problem} where problem is null, "outside" (beyond the clip) or "missing" (no such image/chain item).
 */
export function displayItems(timeline, view, duration) {
  const end = lastFrame(duration);
  const known = new Map((view?.keyframes ?? []).map((k) => [k.id, k]));
  const counts = { chain: 0, image: 0 };
  for (const k of known.values()) if (k.source in counts) counts[k.source]++;
  const imageDefaults = defaultFrames(counts.image, duration);
  const entries = new Map(timeline.entries.map((e) => [e.id, e]));
  const items = [];
  const add = (id, known, entry) => {
    const source = sourceOf(id);
    const base = known?.default ?? null;
    let frame = entry?.frame ?? null;
    if (frame === null && base) {
      frame = source === "image" ? imageDefaults[indexOf(id)] : positionToFrame(base.position, base.unit, duration);
    }
    if (frame === null) return;
    let problem = null;
    if (view && source !== "text" && !known) problem = "missing";
    else if (frame < 0 || frame > end || !Number.isInteger(frame)) problem = "outside";
    items.push({
      id,
      source,
      frame,
      drawFrame: Math.min(Math.max(Math.round(frame), 0), end),
      placed: !!entry,
      skip: !!entry?.skip,
      direction: entry?.direction ?? base?.direction ?? "",
      strength: entry?.strength ?? base?.strength ?? 1,
      hold: entry?.hold ?? base?.hold ?? 0,
      thumb: known?.thumb ?? null,
      width: known?.width ?? null,
      height: known?.height ?? null,
      problem,
    });
  };
  for (const [id, k] of known) if (k.source !== "text") add(id, k, entries.get(id));
  for (const [id, e] of entries) if (!known.has(id) || sourceOf(id) === "text") add(id, null, e);
  const order = (it) => [it.drawFrame, it.skip ? 1 : 0, SOURCES.indexOf(it.source), indexOf(it.id)];
  return items.sort((a, b) => {
    const ka = order(a);
    const kb = order(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1;
    return 0;
  });
}

/** Frames held by keyframes that count (not skipped), except `exceptId`. */
export function takenFrames(items, exceptId = null) {
  return new Set(items.filter((it) => !it.skip && it.id !== exceptId).map((it) => it.frame));
}

/**
 * Lay out thumbnails of width `w` above their keyframes without overlap: each one as close to
 * its keyframe's x as the others allow (overlapping runs are centred on their keyframes), all
 * inside [minX, maxX]. `centers` must be sorted; returns the left edge of each thumbnail.
 */
export function layoutThumbs(centers, w, gap, minX, maxX) {
  const clusters = [];
  for (let i = 0; i < centers.length; i++) {
    let c = { first: i, count: 1, sum: centers[i] };
    for (;;) {
      place(c);
      const prev = clusters[clusters.length - 1];
      if (prev && prev.left + prev.count * (w + gap) > c.left) {
        clusters.pop();
        c = { first: prev.first, count: prev.count + c.count, sum: prev.sum + c.sum };
      } else break;
    }
    clusters.push(c);
  }
  function place(c) {
    const span = c.count * w + (c.count - 1) * gap;
    const left = c.sum / c.count - span / 2;
    c.left = Math.min(Math.max(left, minX), maxX - span);
  }
  const lefts = [];
  for (const c of clusters) for (let k = 0; k < c.count; k++) lefts.push(c.left + k * (w + gap));
  return lefts;
}

/** Thumbnail width that lets `count` thumbnails share `available` px (between lo and hi). */
export function thumbWidth(count, available, gap, lo = 28, hi = 96) {
  if (count <= 0) return hi;
  return Math.max(lo, Math.min(hi, Math.floor((available - (count - 1) * gap) / count)));
}
