import assert from "node:assert/strict";
import { test } from "node:test";

import { oldSavedValues } from "../../web/js/saved_widgets_core.js";

const NOW = ["video", "start_frame", "frame_count", "stride", "max_size", "path", "colourspace", "if_cut_short", "upload"];

test("a Load Video saved before colourspace is read by name: colourspace keeps its default", () => {
  const saved = ["director-samples/a.mp4", 3, 10, 2, 640, "", "image"];
  const got = oldSavedValues("DirectorLoadVideo", saved, NOW);
  assert.deepEqual(got, { video: "director-samples/a.mp4", start_frame: 3, frame_count: 10, stride: 2,
                          max_size: 640, path: "", upload: "image" });
  assert.ok(!("colourspace" in got));
});

test("values saved in today's layout, other lengths and other nodes are left to the frontend", () => {
  assert.equal(oldSavedValues("DirectorLoadVideo", ["a.mp4", 0, 0, 1, 0, "", "auto (from tags)", "warn", "image"], NOW),
               null);
  // a 7-value array whose last value is a colour space is not the old layout
  assert.equal(oldSavedValues("DirectorLoadVideo", ["a.mp4", 0, 0, 1, 0, "", "ACEScg"], NOW), null);
  assert.equal(oldSavedValues("DirectorSaveVideo", ["x", "H.264 8-bit SDR (.mp4)", "auto", ""], ["a", "b"]), null);
  assert.equal(oldSavedValues("DirectorLoadVideo", undefined, NOW), null);
});

test("a Load Video saved before if_cut_short keeps its colour space; if_cut_short keeps its default", () => {
  const saved = ["director-samples/a.mp4", 0, 24, 1, 0, "", "Rec.2100-PQ - Display", "image"];
  const got = oldSavedValues("DirectorLoadVideo", saved, NOW);
  assert.equal(got.colourspace, "Rec.2100-PQ - Display");
  assert.equal(got.upload, "image");
  assert.ok(!("if_cut_short" in got));
});
