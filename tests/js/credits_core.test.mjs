// node --test tests/js/  — the credit estimate shown on the Generate Video node.
import assert from "node:assert/strict";
import { test } from "node:test";

import { creditsNote, durationSeconds, estimateCredits, multiplier } from "../../web/js/credits_core.js";

test("SDR credits follow the table for every resolution and duration", () => {
  const five = ["360p", "540p", "720p", "1080p"].map((resolution) => estimateCredits({ duration: "5 s", resolution }));
  const ten = ["360p", "540p", "720p", "1080p"].map((resolution) => estimateCredits({ duration: "10 s", resolution }));
  assert.deepEqual(five, [20, 50, 100, 400]);
  assert.deepEqual(ten, [60, 150, 300, 1200]);
});

test("HDR doubles and HDR with EXR triples the price", () => {
  assert.equal(estimateCredits({ duration: "5 s", resolution: "720p", hdr: true }), 200);
  assert.equal(estimateCredits({ duration: "10 s", resolution: "1080p", hdr: true, exr: true }), 3600);
  assert.equal(multiplier(false, true), 1);
});

test("unknown settings give no number", () => {
  assert.equal(estimateCredits({ duration: "7 s", resolution: "720p" }), null);
  assert.equal(estimateCredits({ duration: "5 s", resolution: "4K" }), null);
  assert.equal(durationSeconds("10 s"), 10);
  assert.equal(durationSeconds(undefined), null);
});

test("the note says free without a billing engine and the price with one", () => {
  assert.deepEqual(creditsNote({ billing: false, duration: "10 s", resolution: "1080p" }).text, "Draft: free");
  assert.deepEqual(creditsNote({ billing: false, local: true, duration: "10 s", resolution: "1080p" }).text, "Local: free");
  const n = creditsNote({ billing: true, duration: "10 s", resolution: "720p", hdr: true });
  assert.equal(n.text, "≈ 600 credits");
  assert.equal(n.tone, "cost");
  assert.equal(n.detail, "720p · 10 s · HDR ×2");
});

test("the note warns about shots that would be refused or pass the engine's cap", () => {
  assert.equal(creditsNote({ billing: true, duration: "5 s", resolution: "720p", exr: true }).tone, "warn");
  assert.equal(creditsNote({ billing: true, duration: "5 s", resolution: "540p", hdr: true }).text, "HDR needs 720p+");
  const capped = creditsNote({ billing: true, duration: "5 s", resolution: "1080p", cap: 300 });
  assert.equal(capped.text, "400 credits > cap 300");
  assert.equal(capped.tone, "warn");
  assert.equal(creditsNote({ billing: true, duration: "5 s", resolution: "1080p", cap: 400 }).tone, "cost");
});

import { estimateModifyCredits, modifyCreditsNote } from "../../web/js/credits_core.js";

test("Modify Video is billed per started 5 s block of source", () => {
  assert.equal(estimateModifyCredits({ seconds: 5, resolution: "720p" }), 360);
  assert.equal(estimateModifyCredits({ seconds: 5.04, resolution: "720p" }), 720);
  assert.equal(estimateModifyCredits({ seconds: 12, resolution: "1080p" }), 2160);
  assert.equal(estimateModifyCredits({ seconds: 20, resolution: "540p", hdr: true }), 1920);
  assert.equal(estimateModifyCredits({ seconds: 2, resolution: "360p", hdr: true, exr: true }), 540);
  assert.equal(estimateModifyCredits({ seconds: 5, resolution: "4K" }), null);
});

test("the Modify Video note gives the price of a 5 s block, free on Draft", () => {
  assert.equal(modifyCreditsNote({ billing: false, resolution: "720p" }).text, "Draft: free");
  assert.equal(modifyCreditsNote({ billing: false, local: true, resolution: "720p" }).text, "Local: free");
  const n = modifyCreditsNote({ billing: true, resolution: "720p", hdr: true });
  assert.equal(n.text, "≈ 720 credits / 5 s");
  assert.match(n.detail, /per started 5 s of source/);
  assert.equal(modifyCreditsNote({ billing: true, resolution: "540p", hdr: true }).tone, "warn");
  assert.equal(modifyCreditsNote({ billing: true, resolution: "1080p", cap: 500 }).tone, "warn");
});
