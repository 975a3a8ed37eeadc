/**
 * Recent fleet activity for the operator API and dashboard: last seen and last telemetry per device, message
 * and token rates, engine latencies over a short window. Fed by the observers in `metrics.ts` and by
 * `trackHost`, so drawing the fleet table never wakes an agent.
 */
import type { Value } from "../../codecs/frames.ts";
import type { AgentHost } from "../../agents/host.ts";
import type { EngineActivity, FleetRates, OperatorActivity } from "../api/deps.ts";
import { type NowSource, SlidingWindow } from "./sliding-window.ts";

/** Readings larger than this (JSON characters) are not kept in memory; the API can query the agent instead. */
export const MAX_KEPT_READINGS_CHARS = 2048;

type RateKey = "in" | "out" | "tokens";

/** What the tracker remembers of one device. */
interface DeviceActivity {
  /** ms, the tracker's clock. */
  seenAt: number;
  /** ms of the last telemetry; meaningful when `readings` is set. */
  telemetryAt: number;
  readings: Value | undefined;
}

/** Kept instead of readings over MAX_KEPT_READINGS_CHARS. */
const TRUNCATED: Value = Object.freeze({ truncated: true });
type EngineKey = "requests" | "errors" | "ttftMsSum" | "ttftCount" | "waitMsSum" | "waitCount";

export class ActivityTracker implements OperatorActivity {
  readonly #clock: NowSource;
  readonly #rates: SlidingWindow<RateKey>;
  readonly #engine: SlidingWindow<EngineKey>;
  /**
   * One entry per device, updated in place: the up path calls `seen` for every message, so it allocates nothing
   * once the device has an entry (one map and one object per device, not two maps and an object per message).
   */
  readonly #devices = new Map<string, DeviceActivity>();
  /** Each device's metric alias table from its last hello that had one (docs/protocol.md, metric aliases). */
  readonly #aliases = new Map<string, readonly string[]>();

  constructor(clock: NowSource, windowSeconds = 60) {
    this.#clock = clock;
    this.#rates = new SlidingWindow<RateKey>(["in", "out", "tokens"], clock, windowSeconds);
    this.#engine = new SlidingWindow<EngineKey>(
      ["requests", "errors", "ttftMsSum", "ttftCount", "waitMsSum", "waitCount"],
      clock,
      windowSeconds,
    );
  }

  messageIn(): void {
    this.#rates.add("in");
  }
  messageOut(): void {
    this.#rates.add("out");
  }
  engineDispatch(queueWaitMs: number): void {
    this.#engine.add("waitMsSum", queueWaitMs);
    this.#engine.add("waitCount");
  }
  engineFirstToken(ttftMs: number): void {
    this.#engine.add("ttftMsSum", ttftMs);
    this.#engine.add("ttftCount");
  }
  engineComplete(completionTokens: number): void {
    this.#engine.add("requests");
    this.#rates.add("tokens", completionTokens);
  }
  engineError(): void {
    this.#engine.add("errors");
  }

  /** Records an event from device `id`; telemetry readings are kept when small. */
  seen(id: string, telemetry?: Value): void {
    const at = this.#clock.now();
    let entry = this.#devices.get(id);
    if (entry === undefined) {
      entry = { seenAt: at, telemetryAt: 0, readings: undefined };
      this.#devices.set(id, entry);
    }
    entry.seenAt = at;
    if (telemetry !== undefined) {
      const small = approxSize(telemetry, MAX_KEPT_READINGS_CHARS) <= MAX_KEPT_READINGS_CHARS;
      entry.telemetryAt = at;
      entry.readings = small ? telemetry : TRUNCATED;
    }
  }

  /** Forgets a deleted device. */
  forget(id: string): void {
    this.#devices.delete(id);
    this.#aliases.delete(id);
  }

  /** Records the alias table of a device's hello, so its `rv` readings show by name. */
  setAliases(id: string, metrics: readonly string[]): void {
    this.#aliases.set(id, metrics);
  }

  /** The alias table last seen for `id`, if any. */
  aliases(id: string): readonly string[] | undefined {
    return this.#aliases.get(id);
  }

  lastSeen(id: string): number | undefined {
    return this.#devices.get(id)?.seenAt;
  }

  lastTelemetry(id: string): { at: number; readings: Value } | undefined {
    const entry = this.#devices.get(id);
    // A fresh object: the entry itself changes with the device's next message.
    return entry?.readings === undefined ? undefined : { at: entry.telemetryAt, readings: entry.readings };
  }

  rates(): FleetRates {
    const points = this.#rates.points();
    const window = this.#rates.windowSeconds;
    let inSum = 0;
    let outSum = 0;
    for (const p of points) {
      inSum += p.in;
      outSum += p.out;
    }
    // Both windows share the clock and length, so their points line up second by second.
    const engine = this.#engine.points();
    const history = points.map((p, i) => {
      const e = engine[i];
      const ttftMs = e !== undefined && e.ttftCount > 0 ? e.ttftMsSum / e.ttftCount : null;
      return { t: p.t, in: p.in, out: p.out, tokens: p.tokens, ttftMs };
    });
    return { windowSeconds: window, inPerSecond: inSum / window, outPerSecond: outSum / window, history };
  }

  engine(): EngineActivity {
    const t = this.#engine.totals();
    const window = this.#engine.windowSeconds;
    return {
      windowSeconds: window,
      tokensPerSecond: this.#rates.totals().tokens / window,
      requests: t.requests,
      errors: t.errors,
      ttftMsMean: t.ttftCount > 0 ? t.ttftMsSum / t.ttftCount : null,
      queueWaitMsMean: t.waitCount > 0 ? t.waitMsSum / t.waitCount : null,
    };
  }
}

/**
 * Wraps an AgentHost so every event a transport delivers marks its device as seen, and telemetry frames are kept
 * as the device's last readings. Pass the wrapped host to the broker; behaviour is otherwise unchanged.
 */
export function trackHost<H extends AgentHost>(host: H, activity: ActivityTracker): H {
  const wrapped: AgentHost = {
    open: (agentId, connection) => {
      activity.seen(agentId);
      return host.open(agentId, connection);
    },
    deliver: (agentId, connectionId, message) => {
      if (message.channel === "telemetry") {
        activity.seen(agentId, telemetryReadings(message.frame, activity.aliases(agentId)));
      } else {
        // A hello without `metrics` leaves the table as it was, as the agent does.
        if (message.channel === "hello" && isNameList(message.frame.metrics)) {
          activity.setAliases(agentId, message.frame.metrics);
        }
        activity.seen(agentId);
      }
      return host.deliver(agentId, connectionId, message);
    },
    close: (agentId, connectionId, reason) => host.close(agentId, connectionId, reason),
  };
  // Keep every other member of the runtime (call, stats, directory) reachable through the wrapper.
  return new Proxy(host, {
    get(target, prop) {
      if (prop === "open" || prop === "deliver" || prop === "close") return wrapped[prop];
      // `this` stays the target so class getters with private fields work.
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function isNameList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

/**
 * The readings of one telemetry frame as one map: SenML records, `r`, and `rv` by alias name (`rv[i]` under the name
 * `aliases[i]`, or under `rv[i]` when the tracker never saw a table that long; `null` means no reading and is
 * skipped). A frame may carry several of the three; all show.
 */
export function telemetryReadings(
  frame: { ts?: number; r?: Value; senml?: unknown; rv?: unknown },
  aliases?: readonly string[],
): Value {
  const hasR = frame.r !== undefined;
  if (hasR && frame.senml === undefined && frame.rv === undefined) return frame.r as Value;
  const out: { [k: string]: Value } = {};
  if (Array.isArray(frame.senml)) {
    for (const rec of frame.senml as Array<{ bn?: string; n?: string; v?: number; vs?: string; vb?: boolean }>) {
      const name = `${rec.bn ?? ""}${rec.n ?? ""}`;
      const v = rec.v ?? rec.vs ?? rec.vb;
      if (name !== "" && v !== undefined) out[name] = v;
    }
  }
  if (hasR) {
    const r = frame.r as Value;
    if (typeof r !== "object" || r === null || Array.isArray(r) || r instanceof Uint8Array) return r;
    Object.assign(out, r);
  }
  if (Array.isArray(frame.rv)) {
    (frame.rv as Value[]).forEach((v, i) => {
      if (v !== null && v !== undefined) out[aliases?.[i] ?? `rv[${i}]`] = v;
    });
  }
  return out;
}

/**
 * Rough size of a value in characters, stopping as soon as it passes `limit`. Runs on every telemetry message,
 * so it never serializes: strings and bytes count their length, numbers a few characters, containers their items.
 */
export function approxSize(value: Value, limit: number): number {
  let total = 0;
  const stack: Value[] = [value];
  while (stack.length > 0 && total <= limit) {
    const v = stack.pop() as Value;
    if (v === null || typeof v === "boolean" || typeof v === "number" || typeof v === "bigint") total += 8;
    else if (typeof v === "string") total += v.length + 2;
    else if (v instanceof Uint8Array) total += Math.ceil((v.length * 4) / 3) + 16;
    else if (Array.isArray(v)) {
      total += 2;
      for (const item of v) stack.push(item);
    } else {
      for (const [k, item] of Object.entries(v)) {
        total += k.length + 4;
        stack.push(item);
      }
    }
  }
  return total;
}
