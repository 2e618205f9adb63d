// Credit estimate for the Generate Video node: pure functions, no DOM, no ComfyUI.
// The table is nodes/shot/request.py's CREDITS_GENERATE (tests/test_credits_parity.py reads the
// literal between the markers below and checks it against Python, so keep it plain JSON).

export const RESOLUTIONS = ["360p", "540p", "720p", "1080p"];
/* credits-generate */ export const CREDITS_GENERATE = {"5": [20, 50, 100, 400], "10": [60, 150, 300, 1200]}; /* end */
/* credits-modify */ export const CREDITS_MODIFY = {"5": [180, 240, 360, 720], "10": [360, 480, 720, 1440]}; /* end */

/** "5 s" / "10 s" (the duration combo) or a number -> whole seconds, or null. */
export function durationSeconds(value) {
  const n = parseInt(String(value ?? ""), 10);
  return Number.isFinite(n) ? n : null;
}

/** HDR x2; HDR + EXR x3 (EXR alone is not a valid shot; it is priced as SDR like Python does). */
export function multiplier(hdr, exr) {
  return hdr && exr ? 3 : hdr ? 2 : 1;
}

/** Credits of a generate shot on a billing engine, or null for an unknown duration/resolution. */
export function estimateCredits({ duration, resolution, hdr = false, exr = false }) {
  const row = CREDITS_GENERATE[String(durationSeconds(duration))];
  const idx = RESOLUTIONS.indexOf(resolution);
  if (!row || idx < 0) return null;
  return row[idx] * multiplier(!!hdr, !!exr);
}

/**
 * What the node shows before running: {text, tone, detail} with tone "free" (no billing engine),
 * "cost", or "warn" (the shot would be refused, or it passes the engine's per-job cap).
 */
export const LOCAL_NOTE = { text: "Local: free", tone: "free", detail: "Your own model on your GPU, as native ComfyUI nodes: no credits." };

export function creditsNote({ billing, local = false, duration, resolution, hdr = false, exr = false, cap = 0 }) {
  if (local) return LOCAL_NOTE;
  if (!billing) return { text: "Draft: free", tone: "free", detail: "No billing engine connected: the CPU Draft engine makes a preview." };
  if (exr && !hdr) return { text: "EXR needs HDR", tone: "warn", detail: "Turn HDR on (720p or 1080p) to export EXR." };
  if (hdr && !["720p", "1080p"].includes(resolution)) {
    return { text: "HDR needs 720p+", tone: "warn", detail: `HDR is available at 720p and 1080p, not ${resolution}.` };
  }
  const credits = estimateCredits({ duration, resolution, hdr, exr });
  if (credits === null) return { text: "credits: ?", tone: "warn", detail: "Unknown duration or resolution." };
  const mult = multiplier(!!hdr, !!exr);
  const how = `${resolution} · ${durationSeconds(duration)} s${mult > 1 ? ` · ${hdr && exr ? "HDR+EXR" : "HDR"} ×${mult}` : ""}`;
  if (cap > 0 && credits > cap) {
    return { text: `${credits} credits > cap ${cap}`, tone: "warn", detail: `${how}; the engine's max_credits_per_job is ${cap}.` };
  }
  return { text: `≈ ${credits} credits`, tone: "cost", detail: how };
}

/**
 * Credits of a Modify Video shot: per started 5 s block of source (nodes/shot/request.py), so a
 * source of `seconds` costs ceil(seconds / 5) blocks (at least one). null for an unknown resolution.
 */
export function estimateModifyCredits({ seconds, resolution, hdr = false, exr = false }) {
  const idx = RESOLUTIONS.indexOf(resolution);
  if (idx < 0 || !(seconds > 0)) return null;
  const blocks = Math.max(1, Math.ceil(seconds / 5 - 1e-9));
  return CREDITS_MODIFY["5"][idx] * blocks * multiplier(!!hdr, !!exr);
}

/**
 * The note on a Modify Video node. The source's length is only known when it runs, so the node
 * shows the price of one 5 s block (the exact figure appears on the node before any upload).
 */
export function modifyCreditsNote({ billing, local = false, resolution, hdr = false, exr = false, cap = 0 }) {
  if (local) return LOCAL_NOTE;
  if (!billing) return { text: "Draft: free", tone: "free", detail: "No billing engine connected: the CPU Draft engine makes a preview." };
  if (exr && !hdr) return { text: "EXR needs HDR", tone: "warn", detail: "Turn HDR on (720p or 1080p) to export EXR." };
  if (hdr && !["720p", "1080p"].includes(resolution)) {
    return { text: "HDR needs 720p+", tone: "warn", detail: `HDR is available at 720p and 1080p, not ${resolution}.` };
  }
  const block = estimateModifyCredits({ seconds: 5, resolution, hdr, exr });
  if (block === null) return { text: "credits: ?", tone: "warn", detail: "Unknown resolution." };
  const mult = multiplier(!!hdr, !!exr);
  const how = `${resolution}${mult > 1 ? ` · ${hdr && exr ? "HDR+EXR" : "HDR"} ×${mult}` : ""} · billed per started 5 s of source ` +
    `(a 12 s clip is 3 blocks = ${block * 3})`;
  if (cap > 0 && block > cap) {
    return { text: `${block}/5 s > cap ${cap}`, tone: "warn", detail: `${how}; the engine's max_credits_per_job is ${cap}.` };
  }
  return { text: `≈ ${block} credits / 5 s`, tone: "cost", detail: how };
}
