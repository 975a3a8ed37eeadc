/**
 * Reasoning path through the bridge (`node --import tsx bench/engine/bridge.ts`). In one run, against one engine
 * simulator (its own process): the same workload straight to the simulator ("direct", bench/engine/direct.ts, the
 * prompt a DeviceAgent would send) and through a bridge process (`agent-bridge start`) by MQTT devices in this
 * process that publish `up/reason` and read the streamed `down/reason` chunks. Reports per concurrency (devices
 * each with one request outstanding): tokens/s and its ratio, first-chunk and completion latency p50/p99 with what
 * the bridge adds, and the bridge's CPU per streamed token (utime + stime from /proc/PID/stat). Then one device
 * asks `--turns` questions with telemetry and state changing between them, through a second bridge with the
 * default DeviceAgent options, and the prefix-cache hit rate comes from the usage the simulator reports.
 *
 * Options: --concurrency 1,16,64,256  --requests-per-worker 4  --min-requests 32  --rounds 3  --output-tokens 64
 * (the mean answer length)  --length-spread 0.5 (answer lengths uniform in output-tokens x (1 -/+ spread), the same
 * per request in every mode, length-plan.ts; 0: every answer output-tokens long)
 * --pairs 48 (paired latency at one device, paired.ts; 0 skips it)
 * --think-ms 0 (each request first waits a pause uniform in [0, think-ms), the same in every mode, think-plan.ts)
 * --time-scale 1  --turns 24  --json FILE (also write the results as JSON)  --cpu-prof DIR (write a V8 CPU profile
 * of the throughput bridge there; summarize it with bench/fleet/profile-summary.ts), --compare-bin FILE (a second
 * throughput bridge started from another build's bin/agent-bridge.js, e.g. a git worktree of the baseline commit,
 * measured as mode "compare" in the same rounds, so two builds are compared under the same load; with
 * --compare-node-flags "FLAGS" it runs with those node flags, space-separated, to measure a V8 option), --floor (a bare
 * relay, bench/engine/relay-floor.ts: plain aedes, the same prompt, undici and CBOR frames, measured as mode "floor"
 * in the same rounds: what any MQTT-to-engine relay adds on this machine, so the bridge's own share is the bridge's
 * added latency minus the floor's). Figures are medians
 * of the rounds; the order of the modes rotates from round to round. Stops itself after --deadline-s (default 900) and
 * removes what it started.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Cleanup } from "../fleet/cleanup.ts";
import { describeMachine, machineLine } from "../machine.ts";
import { sampleProcess } from "../fleet/proc.ts";
import { rotated } from "../round-order.ts";
import { nodeFlagsOption, type Target, startBridge, startScriptTarget } from "../fleet/targets.ts";
import { agentShapedPrompt } from "./agent-prompt.ts";
import { type BridgeMode, bridgeMode } from "./bridge-mode.ts";
import { flag, medianOfRounds, option, p50p99 } from "./args.ts";
import { connectDevice } from "./mqtt-device.ts";
import { type PairedLatency, pairedLatency } from "./paired.ts";
import { type LengthPlan, lengthPlan } from "./length-plan.ts";
import { type Row, rowTables } from "./bridge-rows.ts";
import { type BenchMode, type StreamOutcome, directMode } from "./modes.ts";
import { type TurnUsage, multiTurnWorkload, overallHitRate, warmHitRate } from "./multi-turn.ts";
import { startSimProcess } from "./sim-start.ts";
import { checkThinkMs, thinkMsOf } from "./think-plan.ts";
import { readPrefillCounters, sequencesPerPrefillStep } from "./sim-stats.ts";

const concurrencies = option("concurrency", "1,16,64,256").split(",").map(Number);
const perWorker = Number(option("requests-per-worker", "4"));
/** Low concurrencies run more requests per worker, so every percentile rests on at least this many. */
const minRequests = Number(option("min-requests", "32"));
const rounds = Number(option("rounds", "3"));
const outputTokens = Number(option("output-tokens", "64"));
const lengths: LengthPlan = lengthPlan(outputTokens, Number(option("length-spread", "0.5")));
const timeScale = Number(option("time-scale", "1"));
const thinkMs = checkThinkMs(Number(option("think-ms", "0")));
const turns = Number(option("turns", "24"));
const jsonFile = option("json", "");
const deadlineS = Number(option("deadline-s", "900"));
const cpuProfDir = option("cpu-prof", "");
const compareBin = option("compare-bin", "");
const compareNodeFlags = nodeFlagsOption(option("compare-node-flags", ""));
const pairCount = Number(option("pairs", "48"));
const withFloor = flag("floor");
const MODEL = "sim-llama-3.1-8b";
const log = (line: string) => process.stderr.write(`${line}\n`);

/** CPU seconds of the process a mode's work runs in (`bridgePid`: the bridge of a bridge mode). */
function cpuSeconds(mode: BenchMode, bridgePid: number): number {
  if (mode.name !== "direct") return sampleProcess(bridgePid)?.cpuSeconds ?? Number.NaN;
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function runMode(
  simUrl: string,
  mode: BenchMode,
  concurrency: number,
  tag: string,
  bridgePid: number,
): Promise<Row> {
  const outcomes: StreamOutcome[] = [];
  const count = Math.max(perWorker, Math.ceil(minRequests / concurrency));
  // Read outside the timed window and the CPU sample: the fetch runs in this process, the direct mode's.
  const prefill0 = await readPrefillCounters(simUrl);
  const cpu0 = cpuSeconds(mode, bridgePid);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      const agentId = `bench-${worker}`;
      for (let i = 0; i < count; i++) {
        const question = `${tag} ${agentId} q${i}: how are the readings?`;
        const pauseMs = thinkMsOf(thinkMs, worker, i);
        if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
        const prompt = agentShapedPrompt(agentId, question, Date.now());
        outcomes.push(await mode.call({ ...prompt, maxTokens: lengths.lengthOf(worker, i) }));
      }
    }),
  );
  const wallMs = performance.now() - start;
  const cpu = cpuSeconds(mode, bridgePid) - cpu0;
  const prefill1 = await readPrefillCounters(simUrl);
  const tokens = outcomes.reduce((n, o) => n + o.tokens, 0);
  const first = p50p99(outcomes.map((o) => o.ttftMs));
  const done = p50p99(outcomes.map((o) => o.latencyMs));
  return {
    mode: mode.name,
    concurrency,
    requests: outcomes.length,
    tokens,
    tokensPerSecond: (tokens * 1000) / wallMs,
    wallMs,
    firstP50Ms: first.p50,
    firstP99Ms: first.p99,
    doneP50Ms: done.p50,
    doneP99Ms: done.p99,
    cpuUsPerToken: (cpu * 1e6) / tokens,
    promptTokensMean: outcomes.reduce((n, o) => n + o.promptTokens, 0) / outcomes.length,
    tokensPerChunk: outcomes.every((o) => o.chunks !== undefined)
      ? tokens / outcomes.reduce((n, o) => n + (o.chunks ?? 0), 0)
      : Number.NaN,
    sequencesPerPrefillStep: sequencesPerPrefillStep(prefill0, prefill1),
  };
}

async function bridgeWith(
  cleanup: Cleanup,
  simUrl: string,
  maxInFlight: number,
  deviceAgent: Record<string, unknown>,
  nodeFlags: string[] = [],
  bin?: string,
): Promise<Target> {
  const dir = cleanup.tempDir("bench-engine-bridge-");
  const configFile = path.join(dir, "config.json");
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      engine: { urls: [simUrl], model: MODEL, maxInFlightPerReplica: maxInFlight },
      agents: { config: { DeviceAgent: deviceAgent } },
      log: { level: "info" },
    }),
  );
  return startBridge(
    {
      dataDir: path.join(dir, "data"),
      configFile,
      apiToken: "bench-token-0123456789abcdef",
      anonymous: true,
      nodeFlags,
      ...(bin === undefined ? {} : { bin }),
    },
    cleanup,
  );
}

/** One device asks the multi-turn workload through `bridge`; returns each answer's usage. */
async function multiTurn(bridge: Target): Promise<TurnUsage[]> {
  const device = await connectDevice(`mqtt://${bridge.host}:${bridge.port}`, "bench-multi-turn");
  const usages: TurnUsage[] = [];
  try {
    await device.publish("hello", { fw: "3.1.0" });
    for (const [i, step] of multiTurnWorkload(turns).entries()) {
      for (const frame of step.telemetry) await device.publish("telemetry", frame);
      await device.publish("state", step.state);
      const answer = await device.ask(`mt${i}`, step.question, outputTokens);
      usages.push({ promptTokens: answer.promptTokens, cachedTokens: answer.cachedTokens });
    }
  } finally {
    await device.close();
  }
  return usages;
}

const f = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  const disarmDeadline = cleanup.guardProcess("engine bridge benchmark", deadlineS * 1000, log);

  const m = describeMachine();
  log(`engine bridge benchmark: ${machineLine(m)}`);
  // Every answer's natural length is the longest the plan asks for, so each ends at its own max_tokens.
  const sim = await startSimProcess(timeScale, lengths.maxTokens);
  cleanup.process(sim.child);
  const maxConcurrency = Math.max(...concurrencies);
  const results: Row[] = [];
  let lostChunks = 0;
  /** CPU each relaying process (bridge, compare, floor) burns while idle, ms/s. */
  const idleCpuMsPerS = new Map<string, number>();
  let usages: TurnUsage[] = [];
  let paired: PairedLatency[] = [];
  try {
    // Throughput bridge: no history and no telemetry in the prompt, so both modes ask the engine for the same work
    // (agent-prompt.ts); the engine client may have as many requests in flight as the direct pool has connections.
    const bridge = await bridgeWith(
      cleanup,
      sim.url,
      maxConcurrency,
      { maxHistoryTurns: 0, promptTelemetryRows: 0 },
      cpuProfDir === "" ? [] : ["--cpu-prof", "--cpu-prof-dir", path.resolve(cpuProfDir)],
    );
    const direct = directMode(sim.url, maxConcurrency, MODEL);
    const viaBridge: BridgeMode = bridgeMode(`mqtt://${bridge.host}:${bridge.port}`, outputTokens);
    const modes: BenchMode[] = [direct, viaBridge];
    const pids = new Map<string, number>([["bridge", bridge.pid]]);
    const bridges: BridgeMode[] = [viaBridge];
    let compare: Target | undefined;
    if (compareBin !== "") {
      // The same settings, another build: its rows sit beside the bridge's, measured in the same rounds.
      compare = await bridgeWith(
        cleanup,
        sim.url,
        maxConcurrency,
        { maxHistoryTurns: 0, promptTelemetryRows: 0 },
        compareNodeFlags,
        path.resolve(compareBin),
      );
      const viaCompare = { ...bridgeMode(`mqtt://${compare.host}:${compare.port}`, outputTokens), name: "compare" };
      modes.push(viaCompare);
      bridges.push(viaCompare);
      pids.set("compare", compare.pid);
    }
    let floor: Target | undefined;
    if (withFloor) {
      floor = await startScriptTarget(
        "relay-floor",
        path.join(import.meta.dirname, "relay-floor.ts"),
        [sim.url, MODEL, String(maxConcurrency)],
        cleanup,
      );
      const viaFloor = { ...bridgeMode(`mqtt://${floor.host}:${floor.port}`, outputTokens), name: "floor" };
      modes.push(viaFloor);
      bridges.push(viaFloor);
      pids.set("floor", floor.pid);
    }
    const pidOf = (mode: BenchMode) => pids.get(mode.name) ?? 0;
    const ids = Array.from({ length: maxConcurrency }, (_, i) => `bench-${i}`);
    log(`connecting ${ids.length} devices`);
    for (const via of bridges) await via.connect(ids);
    // Warm-up: every device's agent (its SQLite database), connections, JIT, the prefix cache.
    for (const mode of modes) await runMode(sim.url, mode, maxConcurrency, "warm", pidOf(mode));
    // What the bridge burns with the devices connected and nothing asked (timers, metrics, keepalives), so the
    // CPU per token can be read net of it at low load.
    const cpuOf = (pid: number) => sampleProcess(pid)?.cpuSeconds ?? Number.NaN;
    const idle0 = bridges.map((via) => cpuOf(pidOf(via)));
    await new Promise((resolve) => setTimeout(resolve, 5000));
    for (const [i, via] of bridges.entries()) {
      idleCpuMsPerS.set(via.name, ((cpuOf(pidOf(via)) - idle0[i]) * 1000) / 5);
    }
    for (const [index, concurrency] of concurrencies.entries()) {
      const perMode = new Map<string, Row[]>();
      for (let round = 0; round < rounds; round++) {
        // Rotated from round to round, so no mode always runs first (two modes: they alternate).
        for (const mode of rotated(modes, index + round)) {
          const row = await runMode(sim.url, mode, concurrency, `c${concurrency}r${round}`, pidOf(mode));
          perMode.set(mode.name, [...(perMode.get(mode.name) ?? []), row]);
        }
      }
      for (const list of perMode.values()) results.push(medianOfRounds(list));
      log(`concurrency ${concurrency} done`);
    }
    if (pairCount > 0) {
      // Fixed lengths: a pair compares two requests for the same work, and the simulator's natural length is the
      // plan's longest, so the direct request must name its max_tokens too.
      paired = await pairedLatency(direct, bridges, pairCount, (i) => ({
        ...agentShapedPrompt("bench-0", `pair ${i} bench-0: how are the readings?`, Date.now()),
        maxTokens: outputTokens,
      }));
      log("paired latency done");
    }
    lostChunks = bridges.reduce((n, via) => n + via.lostChunks(), 0);
    await Promise.all(modes.map((mode) => mode.close()));
    await bridge.stop();
    await compare?.stop();
    await floor?.stop();

    // Prefix-cache bridge: the DeviceAgent defaults (history, telemetry in the prompt).
    const cacheBridge = await bridgeWith(cleanup, sim.url, 64, {});
    usages = await multiTurn(cacheBridge);
    await cacheBridge.stop();
  } finally {
    await sim.stop();
    cleanup.all();
    disarmDeadline();
  }

  const lines: string[] = [];
  lines.push(
    `reasoning path through the bridge: answers of ${lengths.minTokens} to ${lengths.maxTokens} tokens (mean ${outputTokens}, spread ${lengths.spread}), time scale ${timeScale}, >= ${perWorker} requests per device and >= ${minRequests} per run, median of ${rounds} rounds${thinkMs > 0 ? `, think time uniform in [0, ${thinkMs}) ms` : ""}`,
  );
  const bridgeModes = ["bridge", ...(compareBin === "" ? [] : ["compare"]), ...(withFloor ? ["floor"] : [])];
  const compareLabel =
    compareNodeFlags.length > 0 ? `${compareBin}, node flags ${compareNodeFlags.join(" ")}` : compareBin;
  lines.push(...rowTables(results, concurrencies, bridgeModes, idleCpuMsPerS, compareLabel));
  lines.push(
    `chunks lost on the way (QoS 0): ${lostChunks}; CPU while idle, ms/s: ${bridgeModes.map((name) => `${name} ${f(idleCpuMsPerS.get(name) ?? Number.NaN)}`).join(", ")}; load average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  const interval = (ci: [number, number]) => `95% CI ${f(ci[0], 2)} to ${f(ci[1], 2)}`;
  for (const pair of paired) {
    const { addedFirst: a, addedDone: d, firstVersusFirstBridge: v } = pair;
    const versus =
      v === undefined ? "" : `; first chunk minus bridge's, per group: p50 ${f(v.p50, 2)} (${interval(v.ci95)})`;
    lines.push(
      `paired at one device, ${pair.mode} (${pair.pairs} groups of one direct request and one per bridge, order rotating; ${pair.mode} minus direct per group, ms): first chunk p50 ${f(a.p50, 2)} (${interval(a.ci95)}; p10 ${f(a.p10, 2)}, p90 ${f(a.p90, 2)}); completion p50 ${f(d.p50, 2)} (p10 ${f(d.p10, 2)}, p90 ${f(d.p90, 2)})${versus}`,
    );
  }
  lines.push(
    `prefix cache, one device, ${usages.length} questions through the bridge: ${f(overallHitRate(usages) * 100)}% of prompt tokens cached (${f(warmHitRate(usages) * 100)}% after the first question); per question cached/prompt: ${usages.map((u) => `${u.cachedTokens}/${u.promptTokens}`).join(" ")}`,
  );
  console.log(lines.join("\n"));
  if (jsonFile !== "") {
    fs.writeFileSync(
      jsonFile,
      JSON.stringify(
        {
          machine: m,
          options: {
            concurrencies,
            perWorker,
            minRequests,
            rounds,
            outputTokens,
            lengthSpread: lengths.spread,
            thinkMs,
            minAnswerTokens: lengths.minTokens,
            maxAnswerTokens: lengths.maxTokens,
            timeScale,
            turns,
            compareBin,
            compareNodeFlags,
            floor: withFloor,
          },
          results,
          lostChunks,
          paired,
          idleCpuMsPerS: Object.fromEntries(idleCpuMsPerS),
          multiTurn: { usages, hitRate: overallHitRate(usages), warmHitRate: warmHitRate(usages) },
        },
        null,
        2,
      ),
    );
  }
}

await main();
