/**
 * Reason frames fit the device's maxFrame as measured in its own codec: the final frame's text is cut on a UTF-8
 * boundary (fr "length"), and streamed deltas too large for one frame go as several chunks.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fitFinalFrame, splitChunkText } from "../../agents/device/reasoning/fit-frame.ts";
import { truncateUtf8 } from "../../codecs/cut-text.ts";
import { ALL_CODECS, getCodec } from "../../codecs/index.ts";
import type { ReasonStreamFrame } from "../../codecs/frames.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import type { EngineClient } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import type { EngineSimulator } from "../../engine-client/sim/index.ts";
import { DeviceHarness, waitFor } from "./device-harness.ts";
import { scriptedEngine } from "./scripted-engine.ts";

const TEXT = "Temperature 21.5 °C, humidity 40 % — all normal. Ventilation ✓ 🌡️ next check in 10 min. ".repeat(4);
const FINAL: ReasonStreamFrame = { id: "q-1", seq: 12, fin: true, fr: "stop", u: { p: 812, c: 96, k: 640 } };

describe("fitting reason frames per codec", () => {
  for (const codec of ALL_CODECS) {
    test(`${codec.name}: a final frame's text is the longest UTF-8 prefix whose encoding fits maxFrame`, () => {
      const bare = codec.encodeDown("reason", FINAL).byteLength;
      for (const maxFrame of [bare + 14, bare + 20, 90, 100, 159, 300]) {
        const frame = fitFinalFrame(codec, FINAL, TEXT, maxFrame);
        const size = codec.encodeDown("reason", frame).byteLength;
        assert.ok(size <= maxFrame, `${size} bytes within ${maxFrame}`);
        const text = frame.text ?? "";
        assert.ok(TEXT.startsWith(text), "a prefix of the answer");
        assert.equal(frame.fr, "length", "fr says the answer was cut");
        // One more character would not have fitted.
        const next = TEXT.slice(0, text.length + (TEXT.codePointAt(text.length)! > 0xffff ? 2 : 1));
        assert.ok(codec.encodeDown("reason", { ...frame, text: next }).byteLength > maxFrame);
        assert.ok(text.length > 0, `maxFrame ${maxFrame} leaves room for text`);
      }
      const whole = fitFinalFrame(codec, FINAL, "short answer", 1000);
      assert.deepEqual(whole, { ...FINAL, text: "short answer" });
      assert.deepEqual(fitFinalFrame(codec, FINAL, TEXT, null), { ...FINAL, text: TEXT });
      const tiny = fitFinalFrame(codec, FINAL, TEXT, 4);
      assert.equal(tiny.text, undefined, "no room at all: the final frame still goes, without text");
      assert.equal(tiny.fr, "length");
    });

    test(`${codec.name}: the final frame of a failed turn keeps fr "error" when its text is cut`, () => {
      // A device that cannot stream gets the text of the rounds before the failure; cut to fit, it must still learn
      // that the turn failed, not that its answer was merely long.
      const failed = fitFinalFrame(codec, { ...FINAL, fr: "error" }, TEXT, 100);
      assert.ok(codec.encodeDown("reason", failed).byteLength <= 100);
      assert.ok((failed.text ?? "").length > 0 && TEXT.startsWith(failed.text ?? ""));
      assert.equal(failed.fr, "error");
      assert.equal(fitFinalFrame(codec, { ...FINAL, fr: "error" }, TEXT, 4).fr, "error");
    });

    test(`${codec.name}: a streamed delta is split into chunks that each fit maxFrame and together give the delta`, () => {
      const overhead = codec.encodeDown("reason", { id: "q-1", seq: TEXT.length, text: "" }).byteLength;
      // Room for the widest character (4 bytes, 6 as JSON escapes per UTF-16 unit: 12) next to id and seq.
      for (const maxFrame of [overhead + 12, overhead + 20, 96]) {
        const pieces = splitChunkText(codec, "q-1", TEXT, maxFrame, TEXT.length);
        assert.ok(pieces.length > 1);
        assert.equal(pieces.join(""), TEXT);
        pieces.forEach((text, seq) => {
          const size = codec.encodeDown("reason", { id: "q-1", seq, text }).byteLength;
          assert.ok(size <= maxFrame, `chunk ${seq}: ${size} bytes within ${maxFrame}`);
        });
      }
      assert.deepEqual(splitChunkText(codec, "q-1", "hi", 200, 2), ["hi"]);
      assert.deepEqual(splitChunkText(codec, "q-1", TEXT, null, 0), [TEXT]);
      assert.deepEqual(splitChunkText(codec, "q-1", TEXT, 3, 0), [], "not one character fits next to the id");
    });
  }

  test("truncateUtf8 never splits a character", () => {
    assert.deepEqual(truncateUtf8("a°b", 2), { text: "a", cut: true });
    assert.deepEqual(truncateUtf8("a°b", 3), { text: "a°", cut: true });
    assert.deepEqual(truncateUtf8("a°b", 4), { text: "a°b", cut: false });
  });
});

describe("reason frames of a device with a small maxFrame", () => {
  let sim: EngineSimulator;
  let engine: EngineClient;
  const harnesses: DeviceHarness[] = [];
  before(async () => {
    sim = await startEngineSimulator({ timeScale: 0, minOutputTokens: 40, maxOutputTokens: 60 });
    engine = createEngineClient({ urls: [sim.url], model: sim.model });
  });
  after(async () => {
    for (const h of harnesses) await h.dispose();
    await engine.close();
    await sim.close();
  });

  test("a non-streaming device with maxFrame below 160 gets text in its final frame, within maxFrame in its codec", async () => {
    const h = new DeviceHarness({ engine });
    harnesses.push(h);
    const dev = await h.open("tiny-f1", "pb");
    await h.send(dev, { channel: "hello", frame: { fw: "0.1", codec: "pb", stream: false, maxFrame: 100 } });
    await h.send(dev, { channel: "reason", frame: { id: "q", q: "Status?" } });
    const fin = await waitFor(() => dev.frames("reason").find((f) => f.fin === true), "the final frame");
    assert.ok(typeof fin.text === "string" && fin.text.length > 0, "text, not an empty frame");
    assert.equal(fin.fr, "length");
    assert.ok(getCodec("pb").encodeDown("reason", fin).byteLength <= 100);
  });

  test("a streaming device with a small maxFrame gets every chunk within it, in order, with consecutive seqs", async () => {
    const h = new DeviceHarness({ engine });
    harnesses.push(h);
    const dev = await h.open("tiny-f2", "cbor");
    await h.send(dev, { channel: "hello", frame: { fw: "0.1", maxFrame: 24 } });
    await h.send(dev, { channel: "reason", frame: { id: "q", q: "Status?" } });
    await waitFor(() => dev.frames("reason").find((f) => f.fin === true), "the final frame");
    const chunks = dev.frames("reason").filter((f) => f.fin !== true);
    assert.ok(chunks.length > 0);
    assert.deepEqual(
      chunks.map((c) => c.seq),
      chunks.map((_c, i) => i),
    );
    for (const c of chunks) assert.ok(getCodec("cbor").encodeDown("reason", c).byteLength <= 24);
  });

  test("a non-streaming device whose turn fails after a round that said something gets fr error, its text cut", async () => {
    const scripted = scriptedEngine();
    const h = new DeviceHarness({ engine: scripted });
    harnesses.push(h);
    const dev = await h.open("tiny-f3", "cbor");
    await h.send(dev, { channel: "hello", frame: { fw: "0.1", stream: false, maxFrame: 60 } });
    await h.send(dev, { channel: "reason", frame: { id: "q", q: "Status?" } });
    const said = "Let me read the shadow first; this takes a moment.";
    (await scripted.call(0)).reply({ text: said, tool: "read_shadow" });
    (await scripted.call(1)).fail(new Error("the engine went away"));
    const fin = await waitFor(() => dev.frames("reason").find((f) => f.fin === true), "the final frame");
    assert.equal(dev.frames("error")[0]?.id, "q");
    assert.equal(fin.fr, "error");
    assert.ok(typeof fin.text === "string" && fin.text.length > 0 && said.startsWith(fin.text));
    assert.ok(getCodec("cbor").encodeDown("reason", fin).byteLength <= 60);
  });
});
