// node --test tests/js/  — the Reframe Canvas widget's pure core (web/js/reframe_core.js), checked
// against the table of cases the Python core (nodes/shot/geometry.py) checks too.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  History,
  canvasSize,
  frameInView,
  moveRect,
  parseState,
  place,
  presetRect,
  scaleRect,
  snapRect,
  stateText,
} from "../../web/js/reframe_core.js";

const { cases } = JSON.parse(readFileSync(new URL("./fixtures/reframe_cases.json", import.meta.url), "utf8"));
const kind = (k) => cases.filter((c) => c.kind === k);

test("the fixture table has every kind of case", () => {
  assert.equal(kind("size").length, 24);
  assert.ok(kind("preset").length >= 100);
  assert.ok(kind("custom").length >= 10);
  assert.ok(kind("malformed").length >= 10);
  assert.ok(kind("state").length >= 2);
});

test("output sizes equal the Python core's for every aspect and resolution", () => {
  for (const c of kind("size")) assert.deepEqual(canvasSize(c.aspect_ratio, c.resolution), c.size, `${c.aspect_ratio} ${c.resolution}`);
});

test("every preset gives the Python core's rectangle and pixels", () => {
  for (const c of kind("preset")) {
    const r = presetRect(c.preset, c.aspect_ratio, ...c.source);
    assert.deepEqual([r.x, r.y, r.w, r.h], c.rect, `${c.preset} ${c.aspect_ratio} ${c.source}`);
    const [w, h] = canvasSize(c.aspect_ratio, c.resolution);
    const p = place(r, w, h);
    assert.deepEqual([p.x0, p.y0, p.x1, p.y1], c.pixels);
    assert.deepEqual(p.visible, c.visible);
  }
});

test("custom and bleeding rectangles land on the Python core's pixels", () => {
  for (const c of kind("custom")) {
    const [x, y, w, h] = c.rect;
    const [ow, oh] = canvasSize(c.aspect_ratio, c.resolution);
    const p = place({ x, y, w, h }, ow, oh);
    assert.deepEqual([p.x0, p.y0, p.x1, p.y1], c.pixels, JSON.stringify(c.rect));
    assert.deepEqual(p.visible, c.visible);
    assert.equal(p.visiblePixels, c.visible_pixels);
  }
});

test("malformed states are refused naming the same field as the Python core", () => {
  for (const c of kind("malformed")) {
    assert.throws(() => parseState(c.state), (e) => e.message.includes(c.names), c.state);
  }
});

test("good states parse to the Python core's canvas and write back the same text", () => {
  for (const c of kind("state")) {
    const s = parseState(c.state);
    assert.deepEqual([s.aspect, s.rect.x, s.rect.y, s.rect.w, s.rect.h], c.canvas);
    assert.equal(stateText(s), c.text);
  }
});

test("a corner drag with the aspect locked keeps the source's shape and the opposite corner", () => {
  const r = { x: 0, y: 0.3, w: 1, h: 0.3 };
  const s = scaleRect(r, "se", -0.5, 0.05, r.w / r.h);
  assert.ok(Math.abs(s.w / s.h - r.w / r.h) < 1e-12);
  assert.equal(s.x, 0);
  assert.equal(s.y, 0.3);
  const nw = scaleRect(r, "nw", 0.2, 0, r.w / r.h);
  assert.ok(Math.abs(nw.x + nw.w - 1) < 1e-12 && Math.abs(nw.y + nw.h - 0.6) < 1e-12);
  const free = scaleRect(r, "se", 0, 0.2, null);
  assert.deepEqual([free.w, free.h], [1, 0.5]);
});

test("sizes and positions stay within the API's limits however far the user drags", () => {
  const r = scaleRect({ x: 0, y: 0, w: 1, h: 1 }, "se", 9, 9, 1);
  assert.deepEqual([r.w, r.h], [2, 2]);
  const m = moveRect({ x: 0, y: 0, w: 1, h: 1 }, -9, 9);
  assert.deepEqual([m.x, m.y], [-2, 2]);
});

test("snapping pulls the centre to the frame's centre and edges to thirds, within the tolerance only", () => {
  const near = snapRect({ x: 0.01, y: 0.3, w: 1, h: 0.4 }, 0.02);
  assert.equal(near.rect.x, 0);
  assert.ok(Math.abs(near.rect.y + near.rect.h / 2 - 0.5) < 1e-12);
  assert.deepEqual(near.guides.y, [0.5]);
  const third = snapRect({ x: 0.34, y: 0.05, w: 0.2, h: 0.2 }, 0.01);
  assert.ok(Math.abs(third.rect.x - 1 / 3) < 1e-12);
  assert.deepEqual(third.guides.y, []);
  const far = snapRect({ x: 0.1, y: 0.1, w: 0.2, h: 0.2 }, 0.01);
  assert.deepEqual([far.rect.x, far.rect.y], [0.1, 0.1]);
});

test("undo steps back through edits and redo forward; a new edit clears redo", () => {
  const h = new History();
  h.push("a");
  h.push("b");
  assert.equal(h.undo("c"), "b");
  assert.equal(h.undo("b"), "a");
  assert.equal(h.undo("a"), null);
  assert.equal(h.redo("a"), "b");
  h.push("x");
  assert.equal(h.canRedo, false);
});

test("the frame fits the view with its aspect kept", () => {
  const f = frameInView("9:16", 400, 300, 10);
  assert.ok(Math.abs(f.w / f.h - 9 / 16) < 1e-12);
  assert.equal(f.h, 280);
  assert.equal(f.y, 10);
});
