/**
 * Coalescing of streamed reasoning text: the ChunkBatcher on fake timers (first text on the next loop turn, later
 * text held to the flush window, size-triggered flushes, ordering with other updates, flush at the round's end),
 * and a DeviceAgent streaming a burst of deltas through the real runtime as fewer chunks with contiguous seqs.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { ReasonStreamFrame, Value } from "../../codecs/frames.ts";
import type { ChatStreamEvent, ReasoningEngine } from "../../agents/engine.ts";
import {
  type BatchTimers,
  type ChunkBatchOptions,
  ChunkBatcher,
  chunkBatchOptions,
  coalesceProgress,
  mergeTextDeltas,
} from "../../agents/device/reasoning/chunk-batcher.ts";
import { type LoadGauge, idleGauge } from "../../agents/device/reasoning/load-gauge.ts";
import { DeviceHarness, waitFor } from "./device-harness.ts";

/** Timers that fire only when the test says so. */
class FakeTimers implements BatchTimers {
  time = 0;
  #next = 1;
  readonly timeouts = new Map<number, { at: number; fn: () => void }>();
  readonly immediates = new Map<number, () => void>();
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.timeouts.set(id, { at: this.time + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timeouts.delete(handle as number);
  }
  setImmediate(fn: () => void): unknown {
    const id = this.#next++;
    this.immediates.set(id, fn);
    return id;
  }
  clearImmediate(handle: unknown): void {
    this.immediates.delete(handle as number);
  }
  /** Runs the pending immediates (one loop turn). */
  turn(): void {
    const due = [...this.immediates.values()];
    this.immediates.clear();
    for (const fn of due) fn();
  }
  advance(ms: number): void {
    this.time += ms;
    for (const [id, t] of [...this.timeouts]) {
      if (t.at <= this.time) {
        this.timeouts.delete(id);
        t.fn();
      }
    }
  }
}

/** A load gauge the test sets. */
class FakeGauge implements LoadGauge {
  value = 0;
  utilization(): number {
    return this.value;
  }
}

function batcher(options: Partial<ChunkBatchOptions> = {}) {
  const timers = new FakeTimers();
  const gauge = new FakeGauge();
  const out: Value[] = [];
  const b = new ChunkBatcher((u) => out.push(u), chunkBatchOptions(options), timers, gauge);
  return { timers, gauge, out, b };
}

test("the round's first text leaves at once; after a quiet window text leaves on the next loop turn, with that turn's text", () => {
  const { timers, out, b } = batcher({ flushIntervalMs: 15 });
  b.push({ text: "Hi" });
  assert.deepEqual(out, [{ text: "Hi" }], "the first chunk is never held back");
  timers.advance(50);
  b.push({ text: " Hel" });
  b.push({ text: "lo" });
  assert.deepEqual(out, [{ text: "Hi" }]);
  timers.turn();
  assert.deepEqual(out, [{ text: "Hi" }, { text: " Hello" }]);
});

test("text arriving within the flush window waits for the window's end and goes as one update", () => {
  const { timers, out, b } = batcher({ flushIntervalMs: 15 });
  b.push({ text: "a" });
  timers.advance(5);
  b.push({ text: "b" });
  timers.turn();
  timers.advance(5);
  b.push({ text: "c" });
  assert.deepEqual(out, [{ text: "a" }]);
  timers.advance(4);
  assert.deepEqual(out, [{ text: "a" }], "the window is 15 ms from the last flush");
  timers.advance(1);
  assert.deepEqual(out, [{ text: "a" }, { text: "bc" }]);
  timers.advance(100);
  b.push({ text: "d" });
  timers.turn();
  assert.deepEqual(out, [{ text: "a" }, { text: "bc" }, { text: "d" }], "after a quiet window, on the next loop turn");
});

test("while the process is busy the window stretches to busyFlushIntervalMs, and shrinks back when it is not", () => {
  const { timers, gauge, out, b } = batcher({ flushIntervalMs: 20, busyFlushIntervalMs: 50, busyUtilization: 0.8 });
  b.push({ text: "first" });
  gauge.value = 0.85;
  timers.advance(5);
  b.push({ text: "a" });
  timers.advance(30);
  b.push({ text: "b" });
  assert.deepEqual(out, [{ text: "first" }], "20 ms passed, but the busy window is 50");
  timers.advance(15);
  assert.deepEqual(out, [{ text: "first" }, { text: "ab" }]);
  gauge.value = 0.5;
  timers.advance(5);
  b.push({ text: "c" });
  timers.advance(14);
  assert.deepEqual(out.length, 2);
  timers.advance(1);
  assert.deepEqual(out, [{ text: "first" }, { text: "ab" }, { text: "c" }], "idle again: the 20 ms window");
});

test("the round's first text leaves at once even when the process is busy", () => {
  const { gauge, out, b } = batcher({ busyUtilization: 0.5 });
  gauge.value = 1;
  b.push({ text: "now" });
  assert.deepEqual(out, [{ text: "now" }]);
});

test("a busyUtilization of 1 never stretches the window", () => {
  const { timers, gauge, out, b } = batcher({ flushIntervalMs: 20, busyFlushIntervalMs: 50, busyUtilization: 1 });
  gauge.value = 1;
  b.push({ text: "x" });
  timers.advance(1);
  b.push({ text: "y" });
  timers.advance(19);
  assert.deepEqual(out, [{ text: "x" }, { text: "y" }]);
});

test("text deltas merge by concatenation; anything that is not a plain text delta is never merged", () => {
  assert.deepEqual(mergeTextDeltas({ text: "ab" }, { text: "c" }), { text: "abc" });
  assert.equal(mergeTextDeltas({ text: "ab" }, { text: "c", extra: 1 }), undefined);
  assert.equal(mergeTextDeltas({ text: "ab", extra: 1 }, { text: "c" }), undefined);
  assert.equal(mergeTextDeltas("ab", { text: "c" }), undefined);
  assert.equal(mergeTextDeltas({ text: "ab" }, "c"), undefined);
});

test("pending text reaching flushBytes is flushed at once", () => {
  const { out, b } = batcher({ flushIntervalMs: 15, flushBytes: 4 });
  b.push({ text: "first" });
  b.push({ text: "ab" });
  b.push({ text: "é" });
  assert.deepEqual(out, [{ text: "first" }, { text: "abé" }], "é is two UTF-8 bytes");
});

test("an update that is not plain text flushes the pending text first, keeping order", () => {
  const { out, b } = batcher();
  b.push({ text: "x" });
  b.push({ text: "y", extra: 1 });
  b.push("note");
  assert.deepEqual(out, [{ text: "x" }, { text: "y", extra: 1 }, "note"]);
});

test("close flushes what is pending, disarms the timers and ignores later text", () => {
  const { timers, out, b } = batcher();
  b.push({ text: "x" });
  b.close();
  b.push({ text: "late" });
  timers.turn();
  timers.advance(1000);
  assert.deepEqual(out, [{ text: "x" }]);
  assert.equal(timers.timeouts.size + timers.immediates.size, 0);
});

test("options are validated and a bad one is named", () => {
  assert.throws(() => chunkBatchOptions({ flushIntervalMs: -1 }), /flushIntervalMs/);
  assert.throws(() => chunkBatchOptions({ flushBytes: 0 }), /flushBytes/);
  assert.throws(() => chunkBatchOptions({ flushBytes: Number.NaN }), /flushBytes/);
  assert.throws(() => chunkBatchOptions({ busyFlushIntervalMs: -1 }), /busyFlushIntervalMs/);
  assert.throws(() => chunkBatchOptions({ busyUtilization: 1.5 }), /busyUtilization/);
  assert.throws(() => chunkBatchOptions({ busyUtilization: Number.NaN }), /busyUtilization/);
});

test("a coalesced task body reports its pending text before it returns or throws", async () => {
  for (const fails of [false, true]) {
    const timers = new FakeTimers();
    const seen: string[] = [];
    const body = coalesceProgress(
      async (task) => {
        task.progress({ text: "zero " });
        task.progress({ text: "one " });
        task.progress({ text: "two" });
        if (fails) throw new Error("boom");
        return "result";
      },
      chunkBatchOptions(),
      timers,
      idleGauge,
    );
    const outcome = body({
      id: "t",
      signal: new AbortController().signal,
      progress: (u) => seen.push(JSON.stringify(u)),
    }).then(
      (v) => `done ${String(v)}`,
      () => "failed",
    );
    seen.push(await outcome);
    assert.deepEqual(seen, ['{"text":"zero "}', '{"text":"one two"}', fails ? "failed" : "done result"]);
  }
});

/** An engine that streams a scripted answer; `gate` holds the stream after the first delta until released. */
function scriptedEngine(deltas: string[], gate?: Promise<void>): ReasoningEngine {
  return {
    async *stream(): AsyncIterable<ChatStreamEvent> {
      for (const [i, text] of deltas.entries()) {
        yield { type: "text", text };
        if (i === 0 && gate !== undefined) await gate;
      }
      yield {
        type: "done",
        finishReason: "stop",
        usage: { promptTokens: 10, completionTokens: deltas.length, cachedTokens: 0 },
      };
    },
  };
}

const harnesses: DeviceHarness[] = [];
after(async () => {
  for (const h of harnesses) await h.dispose();
});

test("a burst of deltas reaches the device as fewer chunks with contiguous seqs, all text in order, final last", async () => {
  const deltas = Array.from({ length: 40 }, (_v, i) => `w${i} `);
  const h = new DeviceHarness({ engine: scriptedEngine(deltas) });
  harnesses.push(h);
  const dev = await h.open("burst-1", "cbor");
  await h.send(dev, { channel: "reason", frame: { id: "b1", q: "Talk." } });
  await waitFor(() => dev.frames("reason").find((f) => f.fin === true), "final frame");
  const frames = dev.frames("reason") as ReasonStreamFrame[];
  const chunks = frames.slice(0, -1);
  assert.ok(chunks.length >= 1 && chunks.length < deltas.length, `coalesced: ${chunks.length} chunks`);
  assert.deepEqual(
    chunks.map((c) => c.seq),
    chunks.map((_c, i) => i),
  );
  assert.equal(chunks.map((c) => c.text).join(""), deltas.join(""));
  assert.equal(frames.at(-1)?.fin, true);
  assert.equal(frames.at(-1)?.seq, chunks.length);
  // The next turn numbers its chunks from 0 again and ends with its own final seq.
  dev.clear();
  await h.send(dev, { channel: "reason", frame: { id: "b2", q: "Again." } });
  await waitFor(() => dev.frames("reason").find((f) => f.fin === true), "second final frame");
  const second = dev.frames("reason") as ReasonStreamFrame[];
  assert.equal(second[0].seq, 0);
  assert.equal(second.at(-1)?.seq, second.length - 1);
});

test("the first delta is sent without waiting for the rest of the answer", async () => {
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const h = new DeviceHarness({ engine: scriptedEngine(["first", " second", " third"], gate) });
  harnesses.push(h);
  const dev = await h.open("lead-1", "cbor");
  await h.send(dev, { channel: "reason", frame: { id: "l1", q: "Go." } });
  const first = await waitFor(() => dev.frames("reason")[0], "first chunk");
  assert.deepEqual({ seq: first.seq, text: first.text, fin: first.fin }, { seq: 0, text: "first", fin: undefined });
  release();
  await waitFor(() => dev.frames("reason").find((f) => f.fin === true), "final frame");
  const frames = dev.frames("reason") as ReasonStreamFrame[];
  assert.equal(
    frames
      .slice(0, -1)
      .map((c) => c.text)
      .join(""),
    "first second third",
  );
});
