/**
 * One benchmark phase per process (`node --expose-gc --import tsx bench/agents/phases.ts <phase> <json>`), so
 * memory and timing of one phase never leak into another. Prints one JSON line.
 */
import fs from "node:fs";
import { performance } from "node:perf_hooks";
import { percentileOfSorted } from "../percentile.ts";
import { ids, runtimeFor, throughput } from "./throughput.ts";
import { nullTransport } from "./workload.ts";
// The tests' manual clock (dev-only code like this bench): the memory phase lets every agent reach its idle timeout
// at once (all DBs closed) by moving it.
import { ManualClock } from "../../tests/support/manual-clock.ts";

/** Latency of an event on a hibernated agent (wake + onStart + event + commit) vs on an active one. */
async function wakeLatency(p: { dataDir: string; agents: number; lockingMode?: string }): Promise<object> {
  const wakes: number[] = [];
  const rt = runtimeFor(p.dataDir, 1, {
    lockingMode: p.lockingMode,
    observer: { onWake: (i: { durationMs: number }) => wakes.push(i.durationMs) },
  });
  const list = ids(p.agents);
  for (const id of list) await rt.call(id, "touch", []); // state written; maxActiveAgents 1 hibernates the previous one
  wakes.length = 0;
  const cold: number[] = [];
  for (const id of list) {
    const t0 = performance.now();
    const r = await rt.call(id, "ping", []);
    cold.push(performance.now() - t0);
    if (!r.ok) throw new Error(r.message);
  }
  await rt.shutdown();
  const hot: number[] = [];
  const rt2 = runtimeFor(p.dataDir, 10, { lockingMode: p.lockingMode });
  await rt2.call("a0", "ping", []);
  for (let i = 0; i < p.agents; i++) {
    const t0 = performance.now();
    await rt2.call("a0", "ping", []);
    hot.push(performance.now() - t0);
  }
  await rt2.shutdown();
  for (const a of [wakes, cold, hot]) a.sort((x, y) => x - y);
  return {
    wakeOpenP50: percentileOfSorted(wakes, 50),
    wakeOpenP99: percentileOfSorted(wakes, 99),
    coldEventP50: percentileOfSorted(cold, 50),
    coldEventP99: percentileOfSorted(cold, 99),
    hotEventP50: percentileOfSorted(hot, 50),
    hotEventP99: percentileOfSorted(hot, 99),
  };
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) throw new Error("run with node --expose-gc");
  for (let i = 0; i < 4; i++) g();
}

function usage(): { rss: number; heap: number; heapTotal: number } {
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.external + m.arrayBuffers, heapTotal: m.heapTotal };
}

/**
 * Memory per agent, each with one open connection (its transport stays with the runtime while it hibernates).
 * active: all `agents` kept in memory. Hibernated: every agent woken once, then all reach their idle timeout, so every
 * agent database is closed before each measurement. Both after forced GCs; heap counts JS heap + external.
 * Hibernated agents are measured twice, after the first fifth and after all of them: the growth between the two,
 * per agent, is the marginal cost of one more hibernated agent, with the allocator's one-time high-water mark (RSS
 * freed by closed databases that malloc keeps) already paid in the first fifth.
 */
async function memory(p: { dataDir: string; agents: number; active: boolean; cacheSizeKiB?: number }): Promise<object> {
  const clock = new ManualClock(0);
  const idleTimeoutMs = 1000;
  // Hibernated case: at most 10 open at once (LRU), the rest closed by the idle sweep below. A larger cap measures the
  // allocator's high-water mark instead: RSS freed by 1,000 closed databases is not returned to the OS.
  const rt = runtimeFor(p.dataDir, p.active ? p.agents : 10, { idleTimeoutMs, clock, cacheSizeKiB: p.cacheSizeKiB });
  await rt.call("warmup", "touch", []);
  await rt.destroyAgent("warmup");
  gc();
  const cold = usage();
  const all = ids(p.agents);
  const firstPart = p.active ? all.length : Math.floor(all.length / 5);
  const hibernateAll = async () => {
    clock.advanceSync(idleTimeoutMs * 2);
    await new Promise((r) => setImmediate(r));
    const active = rt.stats().active;
    if (active !== 0) throw new Error(`expected every agent hibernated, ${active} active`);
  };
  // A warm process (hibernated case): throwaway agents (at least as many as the first fifth) are woken, hibernated and
  // destroyed first, so the one-time growth of a fresh process (malloc keeping what the first thousands of database
  // opens and closes freed, V8's young generation growing) is paid before `before`, as it is in a bridge that has
  // been running. The cold figure (from `cold`) is reported beside it.
  if (!p.active) {
    // At least 2,000: the one-time growth measured 12 to 15 MiB over the first 2,000 wakes of a fresh process.
    const throwaway = ids(Math.max(firstPart, 2000)).map((id) => `warm-${id}`);
    for (const id of throwaway) {
      await rt.open(id, { id: "c", kind: "internal", codec: "cbor", transport: nullTransport });
      await rt.call(id, "touch", []);
    }
    await hibernateAll();
    for (const id of throwaway) await rt.destroyAgent(id);
    gc();
  }
  const before = usage();
  for (const id of all.slice(0, firstPart)) {
    await rt.open(id, { id: "c", kind: "internal", codec: "cbor", transport: nullTransport });
    await rt.call(id, "touch", []);
  }
  let mid = before;
  if (!p.active) {
    await hibernateAll();
    gc();
    mid = usage();
    for (const id of all.slice(firstPart)) {
      await rt.open(id, { id: "c", kind: "internal", codec: "cbor", transport: nullTransport });
      await rt.call(id, "touch", []);
    }
    await hibernateAll();
  }
  gc();
  const after = usage();
  const stats = rt.stats();
  await rt.shutdown();
  const marginal = p.active ? p.agents : p.agents - firstPart;
  return {
    active: stats.active,
    hibernated: stats.hibernated,
    rssPerAgentBytes: (after.rss - before.rss) / p.agents,
    heapPerAgentBytes: (after.heap - before.heap) / p.agents,
    rssColdPerAgentBytes: (after.rss - cold.rss) / p.agents,
    heapColdPerAgentBytes: (after.heap - cold.heap) / p.agents,
    rssMarginalPerAgentBytes: (after.rss - (p.active ? before : mid).rss) / marginal,
    heapMarginalPerAgentBytes: (after.heap - (p.active ? before : mid).heap) / marginal,
    rssColdBytes: cold.rss,
    rssBeforeBytes: before.rss,
    rssMidBytes: mid.rss,
    rssAfterBytes: after.rss,
    heapTotal: [cold.heapTotal, before.heapTotal, mid.heapTotal, after.heapTotal],
  };
}

const phases: Record<string, (p: never) => Promise<object>> = {
  throughput,
  wakeLatency,
  memory,
};

const [name, json] = process.argv.slice(2);
const phase = phases[name];
if (phase === undefined) throw new Error(`unknown phase ${name}`);
const params = JSON.parse(json) as { dataDir: string };
fs.mkdirSync(params.dataDir, { recursive: true });
const result = await phase(params as never);
process.stdout.write(`${JSON.stringify(result)}\n`);
