// Shows the estimated credits on the Generate Video and Modify Video nodes before they run: the estimate when its
// engine input comes from a Luma Engine node (the only billing engine), "Local: free" with a Local
// engine, "Draft: free" otherwise. The view is credits_pill.js; the numbers come from credits_core.js.

import { creditsNote, modifyCreditsNote } from "./credits_core.js";
import { engineOf, registerCreditsNote, widgetValue } from "./credits_pill.js";

const NODE_ID = "DirectorGenerateVideo";
const MODIFY_ID = "DirectorModifyVideo";

function noteFor(node) {
  const { billing, local, cap } = engineOf(node);
  const finish = {
    billing,
    local,
    resolution: widgetValue(node, "resolution"),
    hdr: !!widgetValue(node, "hdr"),
    exr: !!widgetValue(node, "exr"),
    cap,
  };
  if ((node?.comfyClass ?? node?.type) === MODIFY_ID) return modifyCreditsNote(finish);
  return creditsNote({ ...finish, duration: widgetValue(node, "duration") });
}

registerCreditsNote({ name: "Director.CreditsEstimate", nodeIds: new Set([NODE_ID, MODIFY_ID]), noteFor });
