/**
 * The throughput phase of the agent benchmark: events through the runtime against raw better-sqlite3 on the same
 * files, rounds interleaved in one process.
 */
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import pino from "pino";
import { type AgentRuntime, createRuntime } from "../../agents/index.ts";
import { median } from "../percentile.ts";
import { rotated } from "../round-order.ts";
import { BenchAgent, RawBaseline } from "./workload.ts";

const logger = pino({ level: "silent" });
export const ids = (n: number) => Array.from({ length: n }, (_, i) => `a${i}`);

export function runtimeFor(
  dataDir: string,
  maxActiveAgents: number,
  extra: Record<string, unknown> = {},
): AgentRuntime {
  const defined = Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined));
  return createRuntime({ dataDir, defaultAgentClass: BenchAgent, logger, maxActiveAgents, ...defined });
}

/** The most agents one side keeps open (the runtime's default maxActiveAgents; the baseline's LRU of handles). */
const MAX_OPEN = 1000;

/** Agents are driven in waves of at most `wave` at once (1,000 = MAX_OPEN), so each is woken once per round. */
function waves(agents: number, wave: number): string[][] {
  const all = ids(agents);
  const out: string[][] = [];
  for (let i = 0; i < all.length; i += wave) out.push(all.slice(i, i + wave));
  return out;
}

export interface ThroughputCase {
  dataDir: string;
  agents: number;
  wave: number;
  perAgent: number;
  rounds: number;
  /** Runtime sides, by name. */
  settings: Record<string, RuntimeSettings>;
  /** Raw better-sqlite3 sides besides `baseline` (NORMAL, one transaction per event), by name. */
  raw?: Record<string, RawSettings>;
}

interface RuntimeSettings {
  inFlight: number;
  lockingMode?: string;
  synchronous?: string;
}

interface RawSettings {
  synchronous?: "NORMAL" | "FULL";
  /** Above 1: that many events per transaction with a savepoint each (RawBaseline.group), the group-commit ceiling. */
  inFlight?: number;
}

/** Wall-clock and CPU time of one timed part (process.cpuUsage: user + system of this process). */
interface RoundResult {
  eventsPerSecond: number;
  /** Events per CPU-second of this process: both sides run single-threaded here, so it is the cost per event. */
  eventsPerCpuSecond: number;
}

/** Starts timing a round; the returned function ends it for `events` events. */
function timer(): (events: number) => RoundResult {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  return (events) => {
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(c0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    return { eventsPerSecond: events / seconds, eventsPerCpuSecond: events / Math.max(cpuSeconds, 1e-6) };
  };
}

/**
 * Writes one row per agent through `rt`, untimed, so every agent of the round is in memory with its WAL file and its
 * INSERT prepared, as the baseline's handles are after RawBaseline.warm (closing a database deletes its WAL, and the
 * first write to a new WAL syncs its header: fsyncs the baseline's warm-up also pays outside its timed part).
 */
async function warmRuntime(rt: AgentRuntime, agents: string[]): Promise<void> {
  await Promise.all(agents.map((id) => rt.call(id, "record", [-1])));
}

/**
 * Events through runtime.call -> mailbox -> handler -> group commit -> result (the path deliver takes, without
 * needing a connection per agent), `inFlight` per agent at a time.
 */
async function runtimeRound(
  rt: AgentRuntime,
  c: ThroughputCase,
  inFlight: number,
): Promise<RoundResult & { eventsPerCommit: number }> {
  const before = rt.stats().commits;
  const stop = timer();
  for (const group of waves(c.agents, c.wave)) {
    await Promise.all(
      group.map(async (id) => {
        if (inFlight === 1) {
          // One at a time as a caller writes it: no array and Promise.all around a single call.
          for (let sent = 0; sent < c.perAgent; sent++) await rt.call(id, "record", [sent]);
          return;
        }
        for (let sent = 0; sent < c.perAgent; sent += inFlight) {
          const round: Array<Promise<unknown>> = [];
          for (let k = 0; k < inFlight && sent + k < c.perAgent; k++) round.push(rt.call(id, "record", [sent + k]));
          await Promise.all(round);
        }
      }),
    );
  }
  const events = c.agents * c.perAgent;
  const result = stop(events);
  return { ...result, eventsPerCommit: events / (rt.stats().commits - before) };
}

/**
 * The same rows into the same files with raw better-sqlite3, in the same waves: one transaction per event, or with
 * `inFlight` above 1 the runtime's group-commit statements for that many events at a time.
 */
function baselineRound(base: RawBaseline, c: ThroughputCase, inFlight = 1): RoundResult {
  const stop = timer();
  for (const group of waves(c.agents, c.wave)) {
    if (inFlight === 1) {
      for (let i = 0; i < c.perAgent; i++) for (const id of group) base.event(id, i);
      continue;
    }
    for (let i = 0; i < c.perAgent; i += inFlight)
      for (const id of group) base.group(id, i, Math.min(inFlight, c.perAgent - i));
  }
  return stop(c.agents * c.perAgent);
}

/** Every raw side of a case: the baseline, then the case's extra raw sides. */
function rawSides(c: ThroughputCase): Array<[string, RawSettings]> {
  return [["baseline", {}], ...Object.entries(c.raw ?? {})];
}

/** Median and best of a side's rounds, wall-clock and per CPU-second. */
interface Summary {
  eventsPerSecond: number;
  bestEventsPerSecond: number;
  eventsPerCpuSecond: number;
  bestEventsPerCpuSecond: number;
  eventsPerCommit?: number;
}

function summarize(rounds: RoundResult[]): Summary {
  const wall = rounds.map((r) => r.eventsPerSecond);
  const cpu = rounds.map((r) => r.eventsPerCpuSecond);
  // Median and best of the rounds: on a shared machine the best round is the least disturbed one.
  return {
    eventsPerSecond: median(wall),
    bestEventsPerSecond: Math.max(...wall),
    eventsPerCpuSecond: median(cpu),
    bestEventsPerCpuSecond: Math.max(...cpu),
  };
}

/** One side of the comparison: how it starts a round from its resting state, runs it and returns to rest. */
interface Side {
  round(): Promise<RoundResult & { eventsPerCommit?: number }>;
  close(): Promise<void>;
}

/** Opens one side on the files under `dir`, with `warmIds` in memory (or open) and written once, untimed. */
type Opener = (dir: string, warmIds: string[]) => Promise<Side>;

/** Every side of a case, by name: the raw ones (baseline first), then the runtime settings. */
function openers(c: ThroughputCase): Array<[string, Opener]> {
  const raw = rawSides(c).map(([name, r]): [string, Opener] => [
    name,
    async (dir, warmIds) => {
      const base = new RawBaseline(path.join(dir, "agents"), MAX_OPEN, r.synchronous);
      base.warm(warmIds);
      return { round: async () => baselineRound(base, c, r.inFlight), close: async () => base.close() };
    },
  ]);
  const runtimes = Object.entries(c.settings).map(([name, s]): [string, Opener] => [
    name,
    async (dir, warmIds) => {
      const rt = runtimeFor(dir, MAX_OPEN, { lockingMode: s.lockingMode, synchronous: s.synchronous });
      await warmRuntime(rt, warmIds);
      return { round: () => runtimeRound(rt, c, s.inFlight), close: () => rt.shutdown() };
    },
  ]);
  return [...raw, ...runtimes];
}

/**
 * Up to MAX_OPEN agents: every side keeps its databases open for the whole phase, each side on its own copy of the
 * same files (both use locking_mode=EXCLUSIVE, so they cannot share one file at once). A round then measures events
 * and nothing else: reopening files each round made a 0.1 s round depend on file-block allocation and on the
 * kernel's writeback of the previous round (100-agent baselines of 50,000 to 150,000 events/s on one quiet machine).
 */
async function residentSides(c: ThroughputCase, template: string): Promise<Record<string, Side>> {
  const sides: Record<string, Side> = {};
  for (const [name, open] of openers(c)) {
    const dir = path.join(c.dataDir, name);
    fs.cpSync(template, dir, { recursive: true });
    sides[name] = await open(dir, ids(c.agents));
  }
  return sides;
}

/**
 * More agents than MAX_OPEN: opening and closing databases is part of the case (each agent is woken once per round),
 * so every round opens its side afresh on the one shared set of files, from the same starting point: the most recent
 * MAX_OPEN agents open, with a WAL file.
 */
function wavedSides(c: ThroughputCase, dir: string): Record<string, Side> {
  const recent = ids(c.agents).slice(-MAX_OPEN);
  const sides: Record<string, Side> = {};
  for (const [name, open] of openers(c)) {
    sides[name] = {
      async round() {
        const side = await open(dir, recent);
        const result = await side.round();
        await side.close();
        return result;
      },
      close: async () => {},
    };
  }
  return sides;
}

/**
 * Interleaved rounds in one process: baseline, then each runtime setting, the order rotated by one every round;
 * medians. Interleaving keeps a shared machine's changing load from favouring one side, and rotating keeps any one
 * side from always running first or always right after the same other side.
 */
export async function throughput(c: ThroughputCase): Promise<object> {
  // Creates the files and tables and warms the code, untimed.
  const template = path.join(c.dataDir, "template");
  const first = runtimeFor(template, MAX_OPEN);
  await runtimeRound(first, { ...c, perAgent: 1 }, 1);
  await first.shutdown();
  const sides = c.agents > MAX_OPEN ? wavedSides(c, template) : await residentSides(c, template);
  const results: Record<string, Array<RoundResult & { eventsPerCommit?: number }>> = {};
  try {
    const named = Object.entries(sides);
    for (let r = 0; r < c.rounds; r++) {
      for (const [name, side] of rotated(named, r)) {
        results[name] ??= [];
        results[name].push(await side.round());
      }
    }
  } finally {
    for (const side of Object.values(sides)) await side.close();
  }
  const out: Record<string, Summary> = {};
  for (const [name, r] of Object.entries(results)) {
    const perCommit = r.map((x) => x.eventsPerCommit).filter((x) => x !== undefined);
    out[name] = { ...summarize(r), ...(perCommit.length > 0 ? { eventsPerCommit: median(perCommit) } : {}) };
  }
  return out;
}
