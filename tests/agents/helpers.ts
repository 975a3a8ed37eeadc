import pino from "pino";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { DownMessage } from "../../codecs/frames.ts";
import {
  type AgentRuntime,
  type ConnectionTransport,
  createRuntime,
  type ProtocolMessage,
  type RuntimeOptions,
} from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";

/** Lets queued promise callbacks and immediates run (kept here for the tests that import it with the fixtures). */
export { settle } from "../support/manual-clock.ts";

/** Deterministic random numbers in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function tempDir(prefix = "agents-test-"): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A transport that records what the runtime sends, with the time each output left. */
export class RecordingTransport implements ConnectionTransport {
  sent: Array<{ message: DownMessage; qos: 0 | 1 }> = [];
  protocol: ProtocolMessage[] = [];
  closed: string[] = [];
  onSend: ((message: DownMessage) => void) | null = null;

  send(message: DownMessage, options: { qos: 0 | 1 }): void {
    this.sent.push({ message, qos: options.qos });
    this.onSend?.(message);
  }

  sendProtocol(message: ProtocolMessage): void {
    this.protocol.push(message);
  }

  close(reason: string): void {
    this.closed.push(reason);
  }
}

/** Tests keep agent error logs out of the report; failures are asserted, not read from logs. */
export const silentLogger = pino({ level: "silent" });

/**
 * A runtime on `dataDir` for a test: agents of `agentClass`, a fresh manual clock, the seeded random source and the
 * silent logger, then whatever `extra` sets (a shared clock, limits, an observer).
 */
export function testRuntime(
  dataDir: string,
  agentClass: RuntimeOptions["defaultAgentClass"],
  seed: number,
  extra: Partial<RuntimeOptions> = {},
): AgentRuntime {
  return createRuntime({
    dataDir,
    defaultAgentClass: agentClass,
    clock: new ManualClock(),
    random: seededRandom(seed),
    logger: silentLogger,
    ...extra,
  });
}
