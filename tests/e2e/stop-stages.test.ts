/**
 * A stop runs in stages (app/bridge/stop-stages.ts): the steps of one stage overlap, and the next stage starts only
 * once every one of them settled, failed ones included.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runStopStages, type StopStep } from "../../app/bridge/stop-stages.ts";

interface Gate {
  step: StopStep;
  open(): void;
  fail(err: Error): void;
}

/** A step that records when it starts and settles only when the test says so. */
function gate(name: string, started: string[]): Gate {
  let open = (): void => {};
  let fail = (_err: Error): void => {};
  const settled = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return {
    step: {
      name,
      run: () => {
        started.push(name);
        return settled;
      },
    },
    open: () => open(),
    fail: (err) => fail(err),
  };
}

/** Lets every settled promise's continuations run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("runStopStages", () => {
  test("the steps of a stage start together; the next stage starts once all of them settled", async () => {
    const started: string[] = [];
    const broker = gate("broker", started);
    const sockets = gate("websockets", started);
    const http = gate("http", started);
    const runtime = gate("runtime", started);
    const errors: string[] = [];
    const done = runStopStages([[broker.step, sockets.step, http.step], [runtime.step]], (name) => errors.push(name));
    await turn();
    assert.deepEqual(started, ["broker", "websockets", "http"]);
    http.open();
    sockets.open();
    await turn();
    assert.deepEqual(started, ["broker", "websockets", "http"], "the runtime waits for the broker too");
    broker.open();
    await turn();
    assert.deepEqual(started, ["broker", "websockets", "http", "runtime"]);
    runtime.open();
    await done;
    assert.deepEqual(errors, []);
  });

  test("a step that throws or rejects is reported, and its stage's other steps and the later stages still run", async () => {
    const started: string[] = [];
    const errors: Array<{ name: string; message: string }> = [];
    const throwing: StopStep = {
      name: "broker",
      run: () => {
        throw new Error("sync fault");
      },
    };
    const rejecting = gate("websockets", started);
    const http = gate("http", started);
    const registry = gate("registry", started);
    const done = runStopStages([[throwing, rejecting.step, http.step], [registry.step]], (name, err) =>
      errors.push({ name, message: err instanceof Error ? err.message : String(err) }),
    );
    await turn();
    rejecting.fail(new Error("async fault"));
    http.open();
    await turn();
    assert.deepEqual(started, ["websockets", "http", "registry"]);
    registry.open();
    await done;
    assert.deepEqual(errors, [
      { name: "broker", message: "sync fault" },
      { name: "websockets", message: "async fault" },
    ]);
  });
});
