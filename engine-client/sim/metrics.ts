/**
 * The simulator's `/metrics`, with vLLM's metric names (docs.vllm.ai "Production Metrics") so dashboards and
 * scrapers built for vLLM read the simulator unchanged.
 */

/** vLLM's TTFT histogram buckets, in seconds. */
const TTFT_BUCKETS_S = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** vLLM's request latency buckets (e2e_request_latency_seconds), in seconds. */
const E2E_BUCKETS_S = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];

/**
 * vLLM's engine-level finish reasons, the values of `finished_reason` (its `FinishReason` enum; newer vLLM adds
 * "error" for KV-load failures and "repetition", neither of which the simulator models). The API's "tool_calls" is
 * the engine's "stop": the tool parser renames it in the answer, after the engine counted it.
 */
export type EngineFinishReason = "stop" | "length" | "abort";

/** The `finished_reason` of a sequence that generated its last token, from the answer's `finish_reason`. */
export function completedFinishReason(apiReason: string): EngineFinishReason {
  return apiReason === "length" ? "length" : "stop";
}

/** A histogram as vLLM's Prometheus logger writes it: cumulative buckets, `+Inf`, then sum and count. */
class SimHistogram {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.#counts = new Array<number>(buckets.length).fill(0);
  }

  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) this.#counts[i]++;
  }

  samples(label: string): string[] {
    return [
      ...this.buckets.map((le, i) => `${this.name}_bucket{${label},le="${le}"} ${this.#counts[i]}`),
      `${this.name}_bucket{${label},le="+Inf"} ${this.#count}`,
      `${this.name}_sum{${label}} ${this.#sum}`,
      `${this.name}_count{${label}} ${this.#count}`,
    ];
  }
}

export class SimMetrics {
  promptTokens = 0;
  generationTokens = 0;
  /**
   * Finished requests by finish reason. Every reason is there from the start, at 0, as vLLM's Prometheus logger
   * creates each labelled series when it starts, so a rate over a reason that has not happened yet is 0, not absent.
   */
  readonly success = new Map<EngineFinishReason, number>([
    ["stop", 0],
    ["length", 0],
    ["abort", 0],
  ]);
  readonly #ttft = new SimHistogram(
    "vllm:time_to_first_token_seconds",
    "Histogram of time to first token in seconds.",
    TTFT_BUCKETS_S,
  );
  readonly #e2e = new SimHistogram(
    "vllm:e2e_request_latency_seconds",
    "Histogram of e2e request latency in seconds.",
    E2E_BUCKETS_S,
  );
  rejected = 0;

  observeTtft(seconds: number): void {
    this.#ttft.observe(seconds);
  }

  /** A request left the engine; vLLM observes its arrival-to-end latency with the same finish. */
  finished(reason: EngineFinishReason, e2eSeconds: number): void {
    this.success.set(reason, (this.success.get(reason) ?? 0) + 1);
    this.#e2e.observe(e2eSeconds);
  }

  /** Prometheus text exposition (version 0.0.4). */
  render(state: {
    model: string;
    running: number;
    waiting: number;
    kvCacheUsage: number;
    cacheQueries: number;
    cacheHits: number;
  }): string {
    const label = `model_name="${state.model.replace(/["\\\n]/g, "_")}"`;
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, samples: string[]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples);
    };
    metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", [
      `vllm:num_requests_running{${label}} ${state.running}`,
    ]);
    metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", [
      `vllm:num_requests_waiting{${label}} ${state.waiting}`,
    ]);
    // vLLM exports both names with the same value; dashboards built before the rename read the old one.
    metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", [
      `vllm:kv_cache_usage_perc{${label}} ${state.kvCacheUsage}`,
    ]);
    metric(
      "vllm:gpu_cache_usage_perc",
      "gauge",
      "GPU KV-cache usage. 1 means 100 percent usage. DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
      [`vllm:gpu_cache_usage_perc{${label}} ${state.kvCacheUsage}`],
    );
    metric("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", [
      `vllm:prompt_tokens_total{${label}} ${this.promptTokens}`,
    ]);
    metric("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", [
      `vllm:generation_tokens_total{${label}} ${this.generationTokens}`,
    ]);
    metric(
      "vllm:request_success_total",
      "counter",
      "Count of finished requests by finish reason.",
      [...this.success.entries()].map(
        ([reason, n]) => `vllm:request_success_total{${label},finished_reason="${reason}"} ${n}`,
      ),
    );
    metric(
      "vllm:prefix_cache_queries_total",
      "counter",
      "Prefix cache queries, in terms of number of queried tokens.",
      [`vllm:prefix_cache_queries_total{${label}} ${state.cacheQueries}`],
    );
    metric("vllm:prefix_cache_hits_total", "counter", "Prefix cache hits, in terms of number of cached tokens.", [
      `vllm:prefix_cache_hits_total{${label}} ${state.cacheHits}`,
    ]);
    const rate = state.cacheQueries === 0 ? 0 : state.cacheHits / state.cacheQueries;
    metric("vllm:gpu_prefix_cache_hit_rate", "gauge", "GPU prefix cache block hit rate (legacy name).", [
      `vllm:gpu_prefix_cache_hit_rate{${label}} ${rate}`,
    ]);
    for (const histogram of [this.#ttft, this.#e2e]) {
      metric(histogram.name, "histogram", histogram.help, histogram.samples(label));
    }
    return `${lines.join("\n")}\n`;
  }
}
