/**
 * A stop that begins while `start()` is still opening a part (the runtime resuming agents, the broker's listeners,
 * the HTTP listener) wins: start() fails with BRIDGE_ERR_STOPPED, whichever part it was at, nothing stays listening,
 * and the data directory is free again. `agent-bridge start` treats BRIDGE_ERR_STOPPED as the graceful stop it is
 * (exit 0); any other code is a failed start (a fatal log line, exit 1).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, describe, test } from "node:test";
import { pino } from "pino";
import { LOCK_FILE } from "../../app/bridge/data-dir-lock.ts";
import { type Bridge, createBridge } from "../../app/bridge.ts";
import { hasErrorCode } from "../../errors/index.ts";
import { loopbackConfig } from "../support/in-process-bridge.ts";
import { makeTempDir } from "./support/bridge-process.ts";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** The start step a stop interrupts: the part's method that opens it. */
const STEPS = {
  runtime: (b: Bridge) => ({ part: b.runtime as object, method: "start" }),
  broker: (b: Bridge) => ({ part: b.broker as object, method: "start" }),
  http: (b: Bridge) => ({ part: b.http as object, method: "listen" }),
} as const;

/** The ports in what a step resolved with: `{ port }` (HTTP) or `{ tcp: { port }, ... }` (broker). */
function portsOf(result: unknown): number[] {
  if (typeof result !== "object" || result === null) return [];
  const port = (result as { port?: unknown }).port;
  if (typeof port === "number") return [port];
  return Object.values(result).flatMap((listener: unknown) => portsOf(listener));
}

/** Resolves true when something accepts TCP connections on 127.0.0.1:`port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("a stop while the bridge is starting", () => {
  for (const [name, step] of Object.entries(STEPS)) {
    test(`during the ${name} step fails start() with BRIDGE_ERR_STOPPED and leaves nothing open`, async () => {
      const dataDir = makeTempDir(`bridge-stop-starting-${name}-`);
      dirs.push(dataDir);
      const bridge = await createBridge(loopbackConfig({ dataDir, apiToken: "stop-while-starting-0123456789" }), {
        logger: pino({ level: "silent" }),
      });
      // The stop begins the moment the step has begun, as a SIGTERM arriving then would.
      const { part, method } = step(bridge);
      const target = part as Record<string, (...args: unknown[]) => Promise<unknown>>;
      const open = (target[method] as (...args: unknown[]) => Promise<unknown>).bind(part);
      let stopping: Promise<void> | undefined;
      const ports: number[] = [];
      target[method] = async (...args: unknown[]) => {
        const opening = open(...args);
        stopping = bridge.stop();
        const result = await opening;
        ports.push(...portsOf(result));
        return result;
      };
      await assert.rejects(bridge.start(), (err) => {
        assert.ok(hasErrorCode(err, "BRIDGE_ERR_STOPPED"), `start() failed with ${String(err)}`);
        return true;
      });
      await stopping;
      for (const port of ports) assert.equal(await accepts(port), false, `port ${port} was closed`);
      assert.equal(fs.existsSync(path.join(dataDir, LOCK_FILE)), false, "the data directory lock is released");
    });
  }
});
