// The credits note of a Director generation node before it runs, drawn the same way for every such
// node: a pill in the title bar in the canvas renderer; in the Vue ("Nodes 2.0") renderer, which does
// not draw onDrawForeground, a one-line DOM widget (never serialized). Each node's numbers come from
// its own pure module (credits_core.js, reframe_core.js); this is the view they share.

const { app } = window.comfyAPI.app;

const TONES = {
  free: { bg: "#2b3a2e", fg: "#8fd19e" },
  cost: { bg: "#3d3220", fg: "#f2c14e" },
  warn: { bg: "#4a2323", fg: "#ff8a80" },
};
const BILLING_ENGINES = new Set(["DirectorLumaEngine"]);

export const widgetValue = (node, name) => node?.widgets?.find((w) => w.name === name)?.value;

/** The node feeding input `name`, or null. */
export function inputNode(node, name) {
  const slot = node.findInputSlot?.(name) ?? -1;
  if (slot < 0 || node.inputs?.[slot]?.link == null) return null;
  return node.getInputNode?.(slot) ?? null;
}

/** The engine feeding `node` and what it means for the price: {engine, billing, local, cap}. */
export function engineOf(node) {
  const engine = inputNode(node, "engine");
  const type = engine?.comfyClass ?? engine?.type;
  const active = engine != null && engine.mode !== 4 && engine.mode !== 2;  // not muted or bypassed
  return {
    engine,
    billing: BILLING_ENGINES.has(type) && active,
    local: type === "DirectorLocalEngine" && active,
    cap: Number(widgetValue(engine, "max_credits_per_job") ?? 0),
  };
}

function vueNodes() {
  try {
    return !!app.ui?.settings?.getSettingValue?.("Comfy.VueNodes.Enabled");
  } catch {
    return false;
  }
}

function drawPill(note, node, ctx) {
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

/** The note as a DOM line under the widgets, refreshed while the node is on screen. */
function addNoteLine(node, noteFor) {
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

/**
 * Register the note for the node types in `nodeIds`: `noteFor(node)` gives {text, tone, detail};
 * `extend(nodeType)`, when given, adds node-type hooks of the caller's own (e.g. onExecuted).
 */
export function registerCreditsNote({ name, nodeIds, noteFor, extend = null }) {
  app.registerExtension({
    name,
    async nodeCreated(node) {
      if (nodeIds.has(node?.comfyClass ?? node?.type) && vueNodes()) addNoteLine(node, noteFor);
    },
    async beforeRegisterNodeDef(nodeType, nodeData) {
      if (!nodeIds.has(nodeData?.name)) return;
      const onDrawForeground = nodeType.prototype.onDrawForeground;
      nodeType.prototype.onDrawForeground = function (ctx) {
        const r = onDrawForeground?.apply(this, arguments);
        if (!this.flags?.collapsed && !vueNodes()) drawPill(noteFor(this), this, ctx);
        return r;
      };
      extend?.(nodeType);
    },
  });
}
