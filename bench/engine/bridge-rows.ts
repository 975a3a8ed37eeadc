/**
 * The rows of the bridge benchmark (bridge.ts): one per mode and concurrency (the medians of its rounds, args.ts),
 * and their tables.
 */

export interface Row {
  mode: string;
  concurrency: number;
  requests: number;
  tokens: number;
  tokensPerSecond: number;
  firstP50Ms: number;
  firstP99Ms: number;
  doneP50Ms: number;
  doneP99Ms: number;
  wallMs: number;
  /** CPU of the process doing the calling work (this process for direct, the bridge for bridge), us per token. */
  cpuUsPerToken: number;
  promptTokensMean: number;
  /** Completion tokens per streamed chunk (bridge: how much the bridge coalesced), NaN where not chunked. */
  tokensPerChunk: number;
  /** Sequences the simulator admitted per prefill step during the run: how far the closed loop moved in cohorts. */
  sequencesPerPrefillStep: number;
}

const f = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

/**
 * One table per relaying mode (bridge, compare, floor), each row set against the direct row of the same concurrency;
 * the CPU per token is also given net of what the mode's process burns while idle (`idleCpuMsPerS`).
 */
export function rowTables(
  results: readonly Row[],
  concurrencies: readonly number[],
  bridgeModes: readonly string[],
  idleCpuMsPerS: ReadonlyMap<string, number>,
  compareBin: string,
): string[] {
  const lines: string[] = [];
  const header =
    "| devices | tokens/s direct | tokens/s bridge | ratio | first chunk p50 direct / bridge ms | added first-chunk p50 / p99 ms | completion p50 direct / bridge ms | added completion p50 / p99 ms | bridge CPU us/token (net of idle) | prompt tokens direct / bridge | tokens per chunk (bridge) | sequences per prefill step direct / bridge |";
  for (const name of bridgeModes) {
    if (name === "compare") lines.push(`compare: the same rows for the bridge built from ${compareBin}`);
    if (name === "floor")
      lines.push("floor: the same rows for a bare relay (plain aedes, undici, CBOR; bench/engine/relay-floor.ts)");
    lines.push(header, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    const idle = idleCpuMsPerS.get(name) ?? Number.NaN;
    for (const c of concurrencies) {
      const d = results.find((r) => r.mode === "direct" && r.concurrency === c);
      const b = results.find((r) => r.mode === name && r.concurrency === c);
      if (d === undefined || b === undefined) continue;
      lines.push(
        `| ${c} | ${f(d.tokensPerSecond, 0)} | ${f(b.tokensPerSecond, 0)} | ${f(b.tokensPerSecond / d.tokensPerSecond, 3)} | ${f(d.firstP50Ms, 2)} / ${f(b.firstP50Ms, 2)} | ${f(b.firstP50Ms - d.firstP50Ms, 2)} / ${f(b.firstP99Ms - d.firstP99Ms, 2)} | ${f(d.doneP50Ms)} / ${f(b.doneP50Ms)} | ${f(b.doneP50Ms - d.doneP50Ms, 2)} / ${f(b.doneP99Ms - d.doneP99Ms, 2)} | ${f(b.cpuUsPerToken)} (${f(b.cpuUsPerToken - (idle * b.wallMs) / b.tokens)}) | ${f(d.promptTokensMean, 0)} / ${f(b.promptTokensMean, 0)} | ${f(b.tokensPerChunk, 2)} | ${f(d.sequencesPerPrefillStep, 2)} / ${f(b.sequencesPerPrefillStep, 2)} |`,
      );
    }
  }
  return lines;
}
