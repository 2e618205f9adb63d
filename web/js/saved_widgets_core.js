// Widget values saved by earlier versions of Director's nodes. The frontend fills a node's widgets
// from the saved array by position, so a widget added later shifts the values after it (a Load
// Video saved before `colourspace` existed put the upload button's "image" into colourspace).
// Each old layout names the saved values in order; a saved array that matches one is read by name
// and the widgets it did not have keep their defaults. Pure: tested with Node's test runner.

/** Per node type: the layouts earlier versions saved, each with a check that tells it apart. */
export const OLD_LAYOUTS = {
  DirectorLoadVideo: [
    {
      // before `colourspace` (Director 0.1): the upload button's value last, where colourspace is now
      names: ["video", "start_frame", "frame_count", "stride", "max_size", "path", "upload"],
      matches: (values) => values[6] === "image",
    },
    {
      // before `if_cut_short` (Director 0.1, later): colourspace, then the upload button's value where
      // if_cut_short is now
      names: ["video", "start_frame", "frame_count", "stride", "max_size", "path", "colourspace", "upload"],
      matches: (values) => values[7] === "image",
    },
  ],
};

/** {widget name: saved value} when `values` was saved in an older layout of `type`, else null. */
export function oldSavedValues(type, values, currentNames) {
  if (!Array.isArray(values) || values.length === currentNames.length) return null;
  for (const layout of OLD_LAYOUTS[type] ?? []) {
    if (layout.names.length === values.length && layout.matches(values)) {
      return Object.fromEntries(layout.names.map((name, i) => [name, values[i]]));
    }
  }
  return null;
}
