// Shows the reframe price on the Reframe Video node before it runs: "Draft: free" without a billing
// engine ("Local: free" with a Local engine); with a Luma Engine, the credits per output second at
// the chosen resolution (and the total once the node has run and knows the source's length), or a
// warning for 1080p vertical. The view is credits_pill.js; the numbers come from reframe_core.js.

import { parseState, reframeCreditsNote } from "./reframe_core.js";
import { engineOf, inputNode, registerCreditsNote, widgetValue } from "./credits_pill.js";

function noteFor(node) {
  const { billing, local, cap } = engineOf(node);
  let aspect = null;
  try {
    aspect = parseState(String(widgetValue(inputNode(node, "canvas"), "canvas") ?? "")).aspect;
  } catch {
    aspect = null;
  }
  return reframeCreditsNote({
    billing,
    local,
    resolution: widgetValue(node, "resolution"),
    aspect,
    seconds: node.directorSourceSeconds ?? null,
    cap,
  });
}

/** The source's length, which the node learns when it runs (its ui carries it). */
function rememberSourceSeconds(nodeType) {
  const onExecuted = nodeType.prototype.onExecuted;
  nodeType.prototype.onExecuted = function (output) {
    const r = onExecuted?.apply(this, arguments);
    const s = Number(output?.director_source_seconds?.[0]);
    if (Number.isFinite(s)) this.directorSourceSeconds = s;
    return r;
  };
}

registerCreditsNote({
  name: "Director.ReframeCredits",
  nodeIds: new Set(["DirectorReframeVideo"]),
  noteFor,
  extend: rememberSourceSeconds,
});
