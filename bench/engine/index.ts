/**
 * Engine-path benchmark (`node --import tsx bench/engine/index.ts`): streams chat completions from the engine
 * simulator (in its own process) directly and through the engine client, in the same run, at several
 * concurrencies. Reports tokens/s, latency and TTFT p50/p99, the latency the client adds, CPU per streamed
 * token in the calling process, and the prefix-cache hit rate.
 *
 * Options: --concurrency 1,16,64,256  --requests-per-worker 4  --min-requests 32  --rounds 3  --output-tokens 64
 * --time-scale 1  --json. Every figure is the median of the rounds.
 */
import { Cleanup } from "../fleet/cleanup.ts";
import { machineLine } from "../machine.ts";
import { flag, medianOfRounds, option, p50p99 } from "./args.ts";
import { type BenchMode, type StreamOutcome, clientMode, directMode } from "./modes.ts";
import { type SimProcess, startSimProcess } from "./sim-start.ts";

const concurrencies = option("concurrency", "1,16,64,256").split(",").map(Number);
const perWorker = Number(option("requests-per-worker", "4"));
/** Low concurrencies run more requests per worker, so every percentile rests on at least this many. */
const minRequests = Number(option("min-requests", "32"));
/** Each figure is the median over this many rounds (modes alternate inside a round). */
const rounds = Number(option("rounds", "3"));
const outputTokens = Number(option("output-tokens", "64"));
const timeScale = Number(option("time-scale", "1"));
const asJson = flag("json");
const MODEL = "sim-llama-3.1-8b";
/** A stable system prompt shared by every request (about 300 tokens), as the DeviceAgent puts first. */
const SYSTEM = `You are the agent of an edge device. ${"Answer briefly and cite the readings you used. ".repeat(24)}`;

interface ModeResult {
  mode: string;
  concurrency: number;
  requests: number;
  tokens: number;
  wallMs: number;
  tokensPerSecond: number;
  cpuUsPerToken: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  cacheHitRate: number;
}

async function runMode(mode: BenchMode, concurrency: number, round: number): Promise<ModeResult> {
  const outcomes: StreamOutcome[] = [];
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      const count = Math.max(perWorker, Math.ceil(minRequests / concurrency));
      for (let i = 0; i < count; i++) {
        const agentId = `dev-${worker}`;
        outcomes.push(
          await mode.call({
            system: SYSTEM,
            user: `${mode.name} r${round} ${agentId} q${i}: how are the readings?`,
            agentId,
          }),
        );
      }
    }),
  );
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  const tokens = outcomes.reduce((n, o) => n + o.tokens, 0);
  const prompt = outcomes.reduce((n, o) => n + o.promptTokens, 0);
  const cached = outcomes.reduce((n, o) => n + o.cachedTokens, 0);
  const latency = p50p99(outcomes.map((o) => o.latencyMs));
  const ttft = p50p99(outcomes.map((o) => o.ttftMs));
  return {
    mode: mode.name,
    concurrency,
    requests: outcomes.length,
    tokens,
    wallMs,
    tokensPerSecond: (tokens * 1000) / wallMs,
    cpuUsPerToken: (cpu.user + cpu.system) / tokens,
    latencyP50Ms: latency.p50,
    latencyP99Ms: latency.p99,
    ttftP50Ms: ttft.p50,
    ttftP99Ms: ttft.p99,
    cacheHitRate: prompt === 0 ? 0 : cached / prompt,
  };
}

function startSim(): Promise<SimProcess> {
  return startSimProcess(timeScale, outputTokens);
}

const f = (n: number, digits = 1) => n.toFixed(digits);

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  // Stops by itself: the full run takes some minutes on a 2-core machine.
  const disarmDeadline = cleanup.guardProcess("engine benchmark", 20 * 60_000, (line) => console.error(line));
  const sim = await startSim();
  cleanup.process(sim.child);
  const results: ModeResult[] = [];
  try {
    const maxConcurrency = Math.max(...concurrencies);
    const modes = [directMode(sim.url, maxConcurrency, MODEL), clientMode(sim.url, maxConcurrency, MODEL)];
    for (const mode of modes) await runMode(mode, 4, 0); // warm-up: connections, JIT, prefix cache (min-requests applies)
    for (const [index, concurrency] of concurrencies.entries()) {
      const perMode = new Map<string, ModeResult[]>();
      for (let round = 0; round < rounds; round++) {
        // Alternate which mode goes first, so neither always runs on a warmer or cooler engine.
        const ordered = (index + round) % 2 === 0 ? modes : [...modes].reverse();
        for (const mode of ordered) {
          const result = await runMode(mode, concurrency, index * rounds + round + 1);
          perMode.set(mode.name, [...(perMode.get(mode.name) ?? []), result]);
        }
      }
      for (const list of perMode.values()) results.push(medianOfRounds(list));
    }
    await Promise.all(modes.map((m) => m.close()));
  } finally {
    await sim.stop();
    disarmDeadline();
  }
  if (asJson) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  console.log(`machine: ${machineLine()}`);
  console.log(
    `engine path: ${outputTokens} tokens per answer, time scale ${timeScale}, >= ${perWorker} requests per worker and >= ${minRequests} per run, median of ${rounds} rounds`,
  );
  console.log(
    "| concurrency | tokens/s direct | tokens/s client | ratio | p50 latency direct / client ms | added p50 / p99 ms | TTFT p50 direct / client ms | CPU us/token direct / client | ratio | cache hit rate |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const concurrency of concurrencies) {
    const d = results.find((r) => r.mode === "direct" && r.concurrency === concurrency)!;
    const c = results.find((r) => r.mode === "client" && r.concurrency === concurrency)!;
    console.log(
      `| ${concurrency} | ${f(d.tokensPerSecond, 0)} | ${f(c.tokensPerSecond, 0)} | ${f(c.tokensPerSecond / d.tokensPerSecond, 2)} | ${f(d.latencyP50Ms)} / ${f(c.latencyP50Ms)} | ${f(c.latencyP50Ms - d.latencyP50Ms)} / ${f(c.latencyP99Ms - d.latencyP99Ms)} | ${f(d.ttftP50Ms)} / ${f(c.ttftP50Ms)} | ${f(d.cpuUsPerToken)} / ${f(c.cpuUsPerToken)} | ${f(c.cpuUsPerToken / d.cpuUsPerToken, 2)} | ${f(c.cacheHitRate * 100, 0)}% |`,
    );
  }
}

await main();
