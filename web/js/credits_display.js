// Shows the estimated credits on the Generate Video and Modify Video nodes before they run: the estimate when its
// engine input comes from a Luma Engine node (the only billing engine), "Draft: free" otherwise.
// The canvas renderer gets a pill in the title bar; the Vue ("Nodes 2.0") renderer, which does not
// draw onDrawForeground, gets the same note as a one-line DOM widget (never serialized).
// Pure view; the numbers come from credits_core.js.

import { creditsNote, modifyCreditsNote } from "./credits_core.js";

const { app } = window.comfyAPI.app;

const NODE_ID = "DirectorGenerateVideo";
const MODIFY_ID = "DirectorModifyVideo";
const NODE_IDS = new Set([NODE_ID, MODIFY_ID]);
const BILLING_ENGINES = new Set(["DirectorLumaEngine"]);
const TONES = {
  free: { bg: "#2b3a2e", fg: "#8fd19e" },
  cost: { bg: "#3d3220", fg: "#f2c14e" },
  warn: { bg: "#4a2323", fg: "#ff8a80" },
};

function widgetValue(node, name) {
  return node?.widgets?.find((w) => w.name === name)?.value;
}

/** The node feeding the `engine` input, or null. */
function engineNode(node) {
  const slot = node.findInputSlot?.("engine") ?? -1;
  if (slot < 0 || node.inputs?.[slot]?.link == null) return null;
  return node.getInputNode?.(slot) ?? null;
}

function noteFor(node) {
  const engine = engineNode(node);
  const type = engine?.comfyClass ?? engine?.type;
  const active = engine != null && engine.mode !== 4 && engine.mode !== 2;
  const billing = BILLING_ENGINES.has(type) && active;
  const local = type === "DirectorLocalEngine" && active;
  if ((node?.comfyClass ?? node?.type) === MODIFY_ID) {
    return modifyCreditsNote({
      billing,
      local,
      resolution: widgetValue(node, "resolution"),
      hdr: !!widgetValue(node, "hdr"),
      exr: !!widgetValue(node, "exr"),
      cap: Number(widgetValue(engine, "max_credits_per_job") ?? 0),
    });
  }
  return creditsNote({
    billing,
    local,
    duration: widgetValue(node, "duration"),
    resolution: widgetValue(node, "resolution"),
    hdr: !!widgetValue(node, "hdr"),
    exr: !!widgetValue(node, "exr"),
    cap: Number(widgetValue(engine, "max_credits_per_job") ?? 0),
  });
}

function drawPill(node, ctx) {
  if (node.flags?.collapsed || vueNodes()) return;
  const note = noteFor(node);
  const tone = TONES[note.tone];
  const titleH = window.LiteGraph?.NODE_TITLE_HEIGHT ?? 30;
  ctx.save();
  ctx.font = "600 11px system-ui, sans-serif";
  const w = ctx.measureText(note.text).width + 14;
  const h = 18;
  const x = node.size[0] - w - 8;
  const y = -titleH / 2 - h / 2;
  ctx.fillStyle = tone.bg;
  ctx.beginPath();
  ctx.roundRect ? ctx.roundRect(x, y, w, h, 9) : ctx.rect(x, y, w, h);
  ctx.fill();
  ctx.fillStyle = tone.fg;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(note.text, x + w / 2, y + h / 2 + 0.5);
  ctx.restore();
}

function vueNodes() {
  try {
    return !!app.ui?.settings?.getSettingValue?.("Comfy.VueNodes.Enabled");
  } catch {
    return false;
  }
}

/** The note as a DOM line under the widgets, refreshed while the node is on screen. */
function addNoteLine(node) {
  const el = document.createElement("div");
  el.style.cssText = "font: 600 11px system-ui, sans-serif; padding: 3px 9px; border-radius: 9px; " +
    "width: fit-content; margin: 2px 0 0 auto; white-space: nowrap;";
  const widget = node.addDOMWidget("credits_estimate", "director_credits", el, {
    serialize: false, hideOnZoom: false, getMinHeight: () => 24, getMaxHeight: () => 24, margin: 4,
  });
  widget.serialize = false;
  let last = "";
  const refresh = () => {
    const note = noteFor(node);
    const key = note.text + note.tone;
    if (key !== last) {
      last = key;
      el.textContent = note.text;
      el.title = note.detail;
      el.style.background = TONES[note.tone].bg;
      el.style.color = TONES[note.tone].fg;
    }
  };
  refresh();
  const timer = setInterval(refresh, 500);
  const onRemoved = node.onRemoved;
  node.onRemoved = function () {
    clearInterval(timer);
    return onRemoved?.apply(this, arguments);
  };
}

app.registerExtension({
  name: "Director.CreditsEstimate",
  async nodeCreated(node) {
    if (NODE_IDS.has(node?.comfyClass ?? node?.type) && vueNodes()) addNoteLine(node);
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!NODE_IDS.has(nodeData?.name)) return;
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx) {
      const r = onDrawForeground?.apply(this, arguments);
      drawPill(this, ctx);
      return r;
    };
  },
});
