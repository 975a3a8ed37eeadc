import pino from "pino";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { DownMessage } from "../../codecs/frames.ts";
import type { Clock, ConnectionTransport, ProtocolMessage } from "../../agents/index.ts";

/** A manual clock: timers fire only when the test advances time. */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward, firing due timers in time order and letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers)
        if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets queued promise callbacks and immediates run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

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
