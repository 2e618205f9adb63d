// node --test tests/js/  — the timeline widget's pure core (web/js/timeline_core.js).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  addTextKeyframe,
  defaultFrames,
  deleteKeyframe,
  displayItems,
  formatNumber,
  freeFrame,
  gridTicks,
  layoutThumbs,
  makeScale,
  moveKeyframe,
  parseTimeline,
  positionToFrame,
  resetKeyframe,
  serializeTimeline,
  setField,
  snapFrame,
  takenFrames,
  thumbWidth,
  widestGapFrame,
} from "../../web/js/timeline_core.js";

const fixtures = JSON.parse(readFileSync(new URL("./fixtures/timeline_canonical.json", import.meta.url), "utf8"));

test("canonical text equals the Python core's for every fixture", () => {
  for (const { input, canonical } of fixtures.cases) {
    assert.equal(serializeTimeline(parseTimeline(input)), canonical, `input: ${input}`);
  }
});

test("round trip of the canonical text is the identity", () => {
  for (const { canonical } of fixtures.cases) {
    assert.equal(serializeTimeline(parseTimeline(canonical)), canonical);
  }
});

test("numbers are written like Python writes them", () => {
  assert.equal(formatNumber(48), "48");
  assert.equal(formatNumber(1.0), "1");
  assert.equal(formatNumber(0.8), "0.8");
  assert.equal(formatNumber(1e-5), "1e-05");
  assert.equal(formatNumber(1.5e-7), "1.5e-07");
  assert.equal(formatNumber(0.0001), "0.0001");
  assert.equal(formatNumber(-2.5e-5), "-2.5e-05");
});

test("bad timelines are refused with a message naming the keyframe", () => {
  const bad = [
    ["{not json", /not valid JSON/],
    ['{"v": 2, "keyframes": []}', /schema version 2/],
    ['{"v": 1, "keyframes": [{"id": "img:1", "frame": 3}]}', /entry 1 has id "img:1"/],
    ['{"v": 1, "keyframes": [{"id": "image:1"}, {"id": "image:1"}]}', /keyframe image:1: listed twice/],
    ['{"v": 1, "keyframes": [{"id": "image:1", "frmae": 3}]}', /keyframe image:1: unknown field 'frmae'/],
    ['{"v": 1, "keyframes": [{"id": "image:1", "frame": "3"}]}', /keyframe image:1: "frame" must be a number/],
    ['{"v": 1, "keyframes": [{"id": "text:0", "direction": "x"}]}', /keyframe text:0: a direction-only keyframe needs a "frame"/],
    ['{"v": 1, "keyframes": [{"id": "text:0", "frame": 3, "skip": true}]}', /keyframe text:0: .*cannot be skipped/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseTimeline(text), re, text);
});

test("x maps to the nearest whole frame, halves up, clamped to the clip", () => {
  const s = makeScale({ duration: 5, x0: 10, width: 600 }); // 5 px per frame
  assert.equal(s.lastFrame, 120);
  assert.equal(s.pxPerFrame, 5);
  assert.equal(s.frameToX(0), 10);
  assert.equal(s.frameToX(120), 610);
  assert.equal(s.xToFrame(10 + 5 * 48), 48);
  assert.equal(s.xToFrame(10 + 5 * 48.49), 48);
  assert.equal(s.xToFrame(10 + 5 * 48.5), 49); // halves round up, as in nodes/shot/request.py
  assert.equal(s.xToFrame(-300), 0);
  assert.equal(s.xToFrame(9999), 120);
  for (let f = 0; f <= 120; f++) assert.equal(s.xToFrame(s.frameToX(f)), f);
});

const positions = JSON.parse(readFileSync(new URL("./fixtures/position_to_frame.json", import.meta.url), "utf8"));

test("positions land where the Python rule puts them (the shared table)", () => {
  assert.equal(positions.cases.length, 26);
  for (const c of positions.cases) {
    const want = c.frame === null ? c.drawn_at : c.frame; // refused by Python: drawn clamped
    assert.equal(positionToFrame(c.position, c.unit, c.duration), want, JSON.stringify(c));
  }
});

test("positions follow the one rounding rule of the shot request", () => {
  assert.equal(positionToFrame(2, "seconds", 5), 48);
  assert.equal(positionToFrame(1 / 48, "seconds", 5), 1); // 0.5 frame rounds up
  assert.equal(positionToFrame(0.5, "fraction", 10), 120);
  assert.equal(positionToFrame(37, "frame", 5), 37);
  assert.equal(snapFrame(130, 5), 120);
});

test("16 batch images spread evenly from the first to the last frame", () => {
  assert.deepEqual(defaultFrames(16, 5), [0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120]);
  assert.deepEqual(defaultFrames(16, 10), Array.from({ length: 16 }, (_, i) => i * 16));
  assert.deepEqual(defaultFrames(1, 5), [0]);
  assert.deepEqual(defaultFrames(14, 5).slice(0, 4), [0, 9, 18, 28]); // 120/13 per step, halves up
  assert.deepEqual(defaultFrames(0, 5), []);
});

test("ruler ticks: every frame when there is room, seconds labelled", () => {
  const dense = gridTicks(5, 8);
  assert.equal(dense.length, 121);
  assert.deepEqual(dense.filter((t) => t.label).map((t) => t.label), ["0s", "1s", "2s", "3s", "4s", "5s"]);
  assert.equal(dense.find((t) => t.frame === 12).kind, "half");
  assert.equal(dense.find((t) => t.frame === 13).kind, "frame");
  const sparse = gridTicks(10, 1.5); // 1.5 px per frame: every 3rd frame
  assert.equal(sparse[1].frame, 3);
  assert.equal(sparse.filter((t) => t.kind === "second").length, 11);
});

test("moving a keyframe writes a whole frame inside the clip", () => {
  let tl = parseTimeline("");
  tl = moveKeyframe(tl, "image:3", 41.6, 5);
  tl = moveKeyframe(tl, "image:4", 500, 5);
  tl = moveKeyframe(tl, "image:5", -3, 5);
  assert.equal(
    serializeTimeline(tl),
    '{"v": 1, "keyframes": [\n  {"id": "image:5", "frame": 0},\n  {"id": "image:3", "frame": 42},\n  {"id": "image:4", "frame": 120}\n]}',
  );
});

test("add finds a free frame and a new text id; delete and reset", () => {
  let tl = parseTimeline('{"v": 1, "keyframes": [{"id": "text:0", "frame": 10, "direction": "a"}]}');
  const res = addTextKeyframe(tl, 10, 5, new Set([10, 11]));
  assert.equal(res.id, "text:1");
  const added = res.timeline.entries.find((e) => e.id === "text:1");
  assert.equal(added.frame, 9); // 10 and 11 taken: 9 is the nearest free frame
  tl = setField(res.timeline, "text:1", "direction", "pan right");
  assert.equal(tl.entries.find((e) => e.id === "text:1").direction, "pan right");
  tl = deleteKeyframe(tl, "text:0");
  assert.deepEqual(tl.entries.map((e) => e.id), ["text:1"]);
  tl = deleteKeyframe(tl, "image:2"); // a batch image is skipped, not removed
  assert.equal(tl.entries.find((e) => e.id === "image:2").skip, true);
  tl = deleteKeyframe(tl, "image:2"); // and comes back
  assert.equal(tl.entries.find((e) => e.id === "image:2").skip, false);
  tl = resetKeyframe(tl, "image:2");
  assert.equal(tl.entries.find((e) => e.id === "image:2"), undefined);
  assert.doesNotThrow(() => parseTimeline(serializeTimeline(tl)));
});

test("free frame search stays inside the clip and reports a full clip", () => {
  assert.equal(freeFrame(120, new Set([120]), 5, 1), 119);
  assert.equal(freeFrame(0, new Set([0, 1]), 5, -1), 2);
  const all = new Set(Array.from({ length: 121 }, (_, i) => i));
  assert.equal(freeFrame(60, all, 5), null);
});

test("add goes to the middle of the widest gap", () => {
  assert.equal(widestGapFrame([], 5), 0);
  assert.equal(widestGapFrame([0, 120], 5), 60);
  assert.equal(widestGapFrame([0, 10, 100], 5), 55);
  assert.equal(widestGapFrame([0, 20], 5), 120);
});

const VIEW = {
  v: 1,
  duration: 5,
  keyframes: [
    ...defaultFrames(4, 5).map((f, i) => ({
      id: `image:${i}`, source: "image", frame: f, thumb: { filename: `t${i}.jpg`, subfolder: "s", type: "temp" },
      width: 480, height: 270, default: { position: f, unit: "frame", direction: "", strength: 1, hold: 0 },
    })),
    { id: "chain:0", source: "chain", frame: 12, thumb: null,
      default: { position: 0.5, unit: "seconds", direction: "own words", strength: 0.5, hold: 0 } },
  ],
};

test("display merges the last run with the JSON, which wins", () => {
  const tl = parseTimeline('{"v": 1, "keyframes": [{"id": "image:1", "frame": 50, "direction": "typed"}, {"id": "text:0", "frame": 70, "direction": "t"}]}');
  const items = displayItems(tl, VIEW, 5);
  const byId = Object.fromEntries(items.map((i) => [i.id, i]));
  assert.deepEqual(items.map((i) => [i.id, i.frame]), [
    ["image:0", 0], ["chain:0", 12], ["image:1", 50], ["text:0", 70], ["image:2", 80], ["image:3", 120],
  ]);
  assert.equal(byId["image:1"].direction, "typed");
  assert.equal(byId["image:1"].placed, true);
  assert.equal(byId["image:2"].placed, false);
  assert.equal(byId["chain:0"].direction, "own words");
  assert.equal(byId["chain:0"].strength, 0.5);
  assert.equal(byId["image:3"].thumb.filename, "t3.jpg");
  assert.equal(items.filter((i) => i.problem).length, 0);
  // a 10 s clip: chain keyframe at 0.5 s stays on frame 12, images re-spread over 240 frames
  const ten = Object.fromEntries(displayItems(tl, VIEW, 10).map((i) => [i.id, i.frame]));
  assert.equal(ten["chain:0"], 12);
  assert.equal(ten["image:3"], 240);
});

test("display flags keyframes outside the clip and ones the last run did not have", () => {
  const tl = parseTimeline('{"v": 1, "keyframes": [{"id": "image:9", "frame": 5}, {"id": "text:0", "frame": 200, "direction": "x"}]}');
  const items = displayItems(tl, VIEW, 5);
  const byId = Object.fromEntries(items.map((i) => [i.id, i]));
  assert.equal(byId["image:9"].problem, "missing");
  assert.equal(byId["text:0"].problem, "outside");
  assert.equal(byId["text:0"].drawFrame, 120);
  // before any run nothing is known, so nothing is "missing"
  assert.equal(displayItems(tl, null, 5).find((i) => i.id === "image:9").problem, null);
});

test("skipped keyframes do not hold a frame", () => {
  const tl = parseTimeline('{"v": 1, "keyframes": [{"id": "image:1", "skip": true}]}');
  const items = displayItems(tl, VIEW, 5);
  const taken = takenFrames(items);
  assert.equal(taken.has(40), false);
  assert.equal(taken.has(80), true);
  assert.equal(takenFrames(items, "image:2").has(80), false);
});

test("thumbnails never overlap, stay in bounds and sit over their keyframe when there is room", () => {
  const lone = layoutThumbs([300], 80, 4, 0, 1000);
  assert.deepEqual(lone, [260]);
  const centers = Array.from({ length: 16 }, (_, i) => 20 + i * 40); // crowded: 40 px apart, 60 px wide
  const lefts = layoutThumbs(centers, 56, 4, 0, 1000);
  for (let i = 1; i < lefts.length; i++) assert.ok(lefts[i] - lefts[i - 1] >= 60 - 1e-9);
  assert.ok(lefts[0] >= 0 && lefts[15] + 56 <= 1000);
  const edge = layoutThumbs([2, 998], 80, 4, 0, 1000);
  assert.deepEqual(edge, [0, 920]);
  assert.equal(thumbWidth(16, 1000, 4, 20, 96), 58);
  assert.equal(thumbWidth(2, 1000, 4, 20, 96), 96);
});
