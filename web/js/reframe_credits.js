// Shows the reframe price on the Reframe Video node before it runs: "Draft: free" without a billing
// engine; with a Luma Engine, the credits per output second at the chosen resolution (and the total
// once the node has run and knows the source's length), or a warning for 1080p vertical. Canvas
// renderer: a pill in the title bar; Vue ("Nodes 2.0") renderer: a one-line DOM widget (never
// serialized). The numbers come from reframe_core.js.

import { parseState, reframeCreditsNote } from "./reframe_core.js";

const { app } = window.comfyAPI.app;

const NODE_ID = "DirectorReframeVideo";
const BILLING_ENGINES = new Set(["DirectorLumaEngine"]);
const TONES = {
  free: { bg: "#2b3a2e", fg: "#8fd19e" },
  cost: { bg: "#3d3220", fg: "#f2c14e" },
  warn: { bg: "#4a2323", fg: "#ff8a80" },
};

const widgetValue = (node, name) => node?.widgets?.find((w) => w.name === name)?.value;

function inputNode(node, name) {
  const slot = node.findInputSlot?.(name) ?? -1;
  if (slot < 0 || node.inputs?.[slot]?.link == null) return null;
  return node.getInputNode?.(slot) ?? null;
}

function noteFor(node) {
  const engine = inputNode(node, "engine");
  const type = engine?.comfyClass ?? engine?.type;
  let aspect = null;
  try {
    aspect = parseState(String(widgetValue(inputNode(node, "canvas"), "canvas") ?? "")).aspect;
  } catch {
    aspect = null;
  }
  const active = engine != null && engine.mode !== 4 && engine.mode !== 2;
  return reframeCreditsNote({
    billing: BILLING_ENGINES.has(type) && active,
    local: type === "DirectorLocalEngine" && active,
    resolution: widgetValue(node, "resolution"),
    aspect,
    seconds: node.directorSourceSeconds ?? null,
    cap: Number(widgetValue(engine, "max_credits_per_job") ?? 0),
  });
}

function vueNodes() {
  try {
    return !!app.ui?.settings?.getSettingValue?.("Comfy.VueNodes.Enabled");
  } catch {
    return false;
  }
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
    if (note.text + note.tone === last) return;
    last = note.text + note.tone;
    el.textContent = note.text;
    el.title = note.detail;
    el.style.background = TONES[note.tone].bg;
    el.style.color = TONES[note.tone].fg;
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
  name: "Director.ReframeCredits",
  async nodeCreated(node) {
    if ((node?.comfyClass ?? node?.type) === NODE_ID && vueNodes()) addNoteLine(node);
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE_ID) return;
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx) {
      const r = onDrawForeground?.apply(this, arguments);
      drawPill(this, ctx);
      return r;
    };
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      const r = onExecuted?.apply(this, arguments);
      const s = Number(output?.director_source_seconds?.[0]);
      if (Number.isFinite(s)) this.directorSourceSeconds = s;
      return r;
    };
  },
});
