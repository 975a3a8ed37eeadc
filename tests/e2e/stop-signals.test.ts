/**
 * onStopSignals: the first SIGTERM or SIGINT stops, the same one again within REPEATED_SIGNAL_MS is that one delivered
 * twice (a terminal's Ctrl-C under `npm start` reaches the bridge from the terminal and from npm), a later one forces.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, test } from "node:test";
import { onStopSignals, REPEATED_SIGNAL_MS, type StopSignal } from "../../app/cli/stop-signals.ts";

function harness() {
  const source = new EventEmitter();
  let now = 0;
  const calls: string[] = [];
  const remove = onStopSignals(
    {
      stop: (s) => calls.push(`stop:${s}`),
      force: (s) => calls.push(`force:${s}`),
      repeated: (s) => calls.push(`repeated:${s}`),
    },
    { source, now: () => now },
  );
  return {
    calls,
    remove,
    source,
    send(signal: StopSignal, atMs: number) {
      now = atMs;
      source.emit(signal);
    },
    at(ms: number) {
      now = ms;
    },
  };
}

describe("stop signals", () => {
  test("the same signal again within the window is ignored; a later one forces", () => {
    const h = harness();
    h.send("SIGINT", 1000);
    h.send("SIGINT", 1000 + REPEATED_SIGNAL_MS - 1);
    h.send("SIGINT", 1000 + REPEATED_SIGNAL_MS);
    assert.deepEqual(h.calls, ["stop:SIGINT", "repeated:SIGINT", "force:SIGINT"]);
  });

  test("another signal after the first forces at once", () => {
    const h = harness();
    h.send("SIGTERM", 0);
    h.send("SIGINT", 5);
    assert.deepEqual(h.calls, ["stop:SIGTERM", "force:SIGINT"]);
  });

  test("the remover stops listening", () => {
    const h = harness();
    h.remove();
    h.send("SIGTERM", 0);
    assert.deepEqual(h.calls, []);
    assert.equal(h.source.listenerCount("SIGTERM") + h.source.listenerCount("SIGINT"), 0);
  });

  test("a remover called within the window still swallows the first signal's copy until the window ends", async () => {
    // A graceful stop can end before npm's forwarded copy of the terminal's Ctrl-C arrives; with no listener left, that
    // copy's default action killed the process that had just stopped cleanly (exit by SIGINT instead of 0).
    const h = harness();
    h.send("SIGINT", 0);
    h.at(REPEATED_SIGNAL_MS - 20);
    h.remove();
    assert.equal(h.source.listenerCount("SIGINT"), 1);
    assert.equal(h.source.listenerCount("SIGTERM"), 0);
    h.source.emit("SIGINT");
    assert.deepEqual(h.calls, ["stop:SIGINT"]);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(h.source.listenerCount("SIGINT"), 0);
  });
});
