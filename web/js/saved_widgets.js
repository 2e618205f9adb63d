// Loads Director nodes saved by earlier versions with their values on the right widgets (see
// saved_widgets_core.js). Runs after the frontend's own configure, so it only corrects values.

import { OLD_LAYOUTS, oldSavedValues } from "./saved_widgets_core.js";

const { app } = window.comfyAPI.app;

app.registerExtension({
  name: "Director.SavedWidgets",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!OLD_LAYOUTS[nodeData.name]) return;
    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function (info) {
      const result = onConfigure?.apply(this, arguments);
      const widgets = this.widgets ?? [];
      const saved = oldSavedValues(nodeData.name, info?.widgets_values, widgets.map((w) => w.name));
      if (saved) {
        for (const w of widgets) {
          const value = w.name in saved ? saved[w.name] : defaultOf(nodeData, w.name);
          if (value !== undefined) w.value = value;
        }
      }
      return result;
    };
  },
});

/** The default the node definition gives input `name` (required or optional). */
function defaultOf(nodeData, name) {
  const spec = nodeData.input?.required?.[name] ?? nodeData.input?.optional?.[name];
  const opts = spec?.[1];
  if (opts && "default" in opts) return opts.default;
  const choices = Array.isArray(spec?.[0]) ? spec[0] : opts?.options;
  return Array.isArray(choices) ? choices[0] : undefined;
}
