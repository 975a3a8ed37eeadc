/** Options of the engine simulator, their defaults and their validation. */
import { BridgeError } from "../../errors/index.ts";
import { BLOCK_SIZE_TOKENS } from "./prefix-cache.ts";

/**
 * The step-time model of one engine iteration. Defaults were measured on an H200 for an 8B Llama-shaped
 * bf16 model: decode step ms = 4.96 + sum over sequences of (0.011 + 0.039 x context/1000);
 * prefill ms = max(4.9, 0.023 x uncached prompt tokens).
 */
export interface StepModel {
  /** Fixed cost of a decode step. Default 4.96 ms. */
  decodeBaseMs: number;
  /** Cost of each sequence in the batch. Default 0.011 ms. */
  decodePerSeqMs: number;
  /** Cost of each sequence per 1000 tokens of its context (attention over the KV cache). Default 0.039 ms. */
  decodePerSeqPerKTokensMs: number;
  /** Smallest prefill cost. Default 4.9 ms. */
  prefillMinMs: number;
  /** Prefill cost per uncached prompt token. Default 0.023 ms. */
  prefillPerTokenMs: number;
}

/** Faults the simulator can inject; settable by option, by `setFaults` and by `POST /admin/faults`. */
export interface EngineSimFaults {
  /** Destroy every connection as it opens and every request as it arrives (the engine is "down"). */
  refuseConnections: boolean;
  /**
   * Accept every connection and read every request, then never answer (no headers): a hung engine process. Chat
   * requests are recorded (outcome `running`, status 0, `aborted` once the client leaves); `/health`, `/v1/models` and
   * `/metrics` hang too. Admin routes still answer. A held request stays held until its client leaves or the
   * simulator closes, also after the fault is cleared.
   */
  stall: boolean;
  /** Answer chat requests with `status` (and `Retry-After` when given); `count` requests, or all when absent. */
  failRequests: { status: number; count?: number; retryAfterSeconds?: number } | null;
  /** Status of `GET /health` (200 when healthy). */
  healthStatus: number;
  /** Extra real (unscaled) delay before a request is scheduled, so its first token is late. */
  firstTokenDelayMs: number;
  /**
   * While the first token is delayed, a streamed answer sends an SSE comment (`: keep-alive`) every this many real
   * ms, as proxies and some servers do: the connection looks alive though no token comes. 0 sends none. Default 0.
   */
  keepAliveCommentMs: number;
  /** Send an error object mid-stream after `tokens` tokens; `count` requests, or all when absent. */
  errorAfterTokens: { tokens: number; count?: number } | null;
  /** Destroy the connection after `tokens` tokens; `count` requests, or all when absent. */
  dropAfterTokens: { tokens: number; count?: number } | null;
  /** Put the presented bearer token in 401 bodies, as some servers do (tests the client's redaction). */
  echoApiKey: boolean;
}

export interface EngineSimOptions {
  /** Interface to bind. Default 127.0.0.1. */
  host: string;
  /** TCP port; 0 picks a free one. Default 0. */
  port: number;
  /** Served model id. Default "sim-llama-3.1-8b". */
  model: string;
  /** Context window in tokens (prompt + completion). Default 8192. */
  maxModelLen: number;
  /** When set, `/v1/*` needs `Authorization: Bearer <apiKey>` (as vLLM's `--api-key`). Default none. */
  apiKey?: string;
  /** Wall time per modelled ms: 1 is real time, 0.01 runs 100x faster, 0 does not wait at all. Default 1. */
  timeScale: number;
  stepModel: StepModel;
  /** Sequences decoded together (vLLM `--max-num-seqs`). Default 256. */
  maxNumSeqs: number;
  /** Prompt tokens prefilled per step (vLLM `--max-num-batched-tokens`). Default 8192. */
  maxNumBatchedTokens: number;
  /** Requests waiting for a batch slot; one more is answered 503. Default 1024. */
  maxWaiting: number;
  /** `Retry-After` seconds sent with the queue-full 503. Default 1. */
  retryAfterSeconds: number;
  /** Prefix-cache capacity in 16-token blocks (LRU). Default 8192. */
  prefixCacheBlocks: number;
  /**
   * KV-cache capacity in 16-token blocks: what the running sequences may hold (vLLM's `num_gpu_blocks`). Default
   * 55000 (about 880k tokens), what an H200 leaves for an 8B Llama-shaped bf16 model: 0.9 of its 140 GiB (vLLM's
   * `gpu_memory_utilization`) less 15 GiB of weights and about 4 GiB of activations is about 107 GiB, at 128 KiB
   * per token (32 layers x 8 KV heads x 128 dims x key and value x 2 bytes), 2 MiB per block. Must hold
   * `maxModelLen` tokens, as vLLM refuses to start otherwise.
   */
  kvCacheBlocks: number;
  /** Completion length when `max_tokens` is absent. Default 256. */
  defaultMaxTokens: number;
  /** Natural answer length range (a seeded pick), before `max_tokens` cuts it. Default 8 to 64. */
  minOutputTokens: number;
  maxOutputTokens: number;
  /** SSE line ending: vLLM sends "\n"; "\r\n" exercises clients against other servers. Default "\n". */
  sseLineEnding: "\n" | "\r\n";
  /** Error body shape: "nested" `{error:{message}}` (vLLM >= 0.10, OpenAI) or "flat" `{object:"error",...}`. */
  errorFormat: "nested" | "flat";
  /** Requests remembered for `requests()` and `/admin/requests`. Default 1000. */
  maxRecords: number;
  faults: EngineSimFaults;
}

export type EngineSimInit = Partial<Omit<EngineSimOptions, "stepModel" | "faults">> & {
  stepModel?: Partial<StepModel>;
  faults?: Partial<EngineSimFaults>;
};

export const NO_FAULTS: EngineSimFaults = {
  refuseConnections: false,
  stall: false,
  failRequests: null,
  healthStatus: 200,
  firstTokenDelayMs: 0,
  keepAliveCommentMs: 0,
  errorAfterTokens: null,
  dropAfterTokens: null,
  echoApiKey: false,
};

export const ENGINE_SIM_DEFAULTS: EngineSimOptions = {
  host: "127.0.0.1",
  port: 0,
  model: "sim-llama-3.1-8b",
  maxModelLen: 8192,
  timeScale: 1,
  stepModel: {
    decodeBaseMs: 4.96,
    decodePerSeqMs: 0.011,
    decodePerSeqPerKTokensMs: 0.039,
    prefillMinMs: 4.9,
    prefillPerTokenMs: 0.023,
  },
  maxNumSeqs: 256,
  maxNumBatchedTokens: 8192,
  maxWaiting: 1024,
  retryAfterSeconds: 1,
  prefixCacheBlocks: 8192,
  kvCacheBlocks: 55_000,
  defaultMaxTokens: 256,
  minOutputTokens: 8,
  maxOutputTokens: 64,
  sseLineEnding: "\n",
  errorFormat: "nested",
  maxRecords: 1000,
  faults: NO_FAULTS,
};

function fail(field: string, rule: string): never {
  throw new BridgeError("BRIDGE_ERR_CONFIG", `engineSim.${field} ${rule}`, { field: `engineSim.${field}` });
}

function int(value: number, field: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) fail(field, `must be an integer from ${min} to ${max}`);
}

function nonNegative(value: number, field: string): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) fail(field, "must be a finite number >= 0");
}

/** Merges `init` over the defaults and validates; throws BRIDGE_ERR_CONFIG naming the field. */
export function resolveEngineSimOptions(init: EngineSimInit): EngineSimOptions {
  const defined = Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined));
  const options: EngineSimOptions = {
    ...ENGINE_SIM_DEFAULTS,
    ...defined,
    stepModel: { ...ENGINE_SIM_DEFAULTS.stepModel, ...init.stepModel },
    faults: { ...NO_FAULTS, ...init.faults },
  };
  int(options.port, "port", 0, 65535);
  if (typeof options.model !== "string" || options.model.length === 0) fail("model", "must be a non-empty string");
  int(options.maxModelLen, "maxModelLen", 16);
  nonNegative(options.timeScale, "timeScale");
  for (const [key, value] of Object.entries(options.stepModel)) nonNegative(value, `stepModel.${key}`);
  int(options.maxNumSeqs, "maxNumSeqs", 1);
  int(options.maxNumBatchedTokens, "maxNumBatchedTokens", 1);
  int(options.maxWaiting, "maxWaiting", 0);
  int(options.retryAfterSeconds, "retryAfterSeconds", 0);
  int(options.prefixCacheBlocks, "prefixCacheBlocks", 0);
  int(options.kvCacheBlocks, "kvCacheBlocks", 1);
  if (options.kvCacheBlocks * BLOCK_SIZE_TOKENS < options.maxModelLen) {
    fail("kvCacheBlocks", `must hold maxModelLen (${options.maxModelLen}) tokens in ${BLOCK_SIZE_TOKENS}-token blocks`);
  }
  int(options.defaultMaxTokens, "defaultMaxTokens", 1);
  int(options.minOutputTokens, "minOutputTokens", 1);
  int(options.maxOutputTokens, "maxOutputTokens", options.minOutputTokens);
  int(options.maxRecords, "maxRecords", 0);
  if (options.sseLineEnding !== "\n" && options.sseLineEnding !== "\r\n")
    fail("sseLineEnding", 'must be "\\n" or "\\r\\n"');
  if (options.errorFormat !== "nested" && options.errorFormat !== "flat")
    fail("errorFormat", 'must be "nested" or "flat"');
  validateFaults(options.faults, "faults");
  return options;
}

/**
 * A copy of `faults` whose counted faults are objects of its own: the simulator counts their `count` down as it uses
 * them, which must not change the object a caller passed (reused for another simulator, it would start used up).
 */
export function ownFaults<T extends Partial<EngineSimFaults>>(faults: T): T {
  const copy = { ...faults };
  if (faults.failRequests) copy.failRequests = { ...faults.failRequests };
  if (faults.errorAfterTokens) copy.errorAfterTokens = { ...faults.errorAfterTokens };
  if (faults.dropAfterTokens) copy.dropAfterTokens = { ...faults.dropAfterTokens };
  return copy;
}

/** Validates a (partial) fault set; used for options and for the admin endpoint. */
export function validateFaults(faults: Partial<EngineSimFaults>, field: string): void {
  for (const key of ["refuseConnections", "stall", "echoApiKey"] as const) {
    if (faults[key] !== undefined && typeof faults[key] !== "boolean") fail(`${field}.${key}`, "must be a boolean");
  }
  if (faults.healthStatus !== undefined) int(faults.healthStatus, `${field}.healthStatus`, 100, 599);
  if (faults.firstTokenDelayMs !== undefined) nonNegative(faults.firstTokenDelayMs, `${field}.firstTokenDelayMs`);
  if (faults.keepAliveCommentMs !== undefined) nonNegative(faults.keepAliveCommentMs, `${field}.keepAliveCommentMs`);
  if (faults.failRequests) {
    int(faults.failRequests.status, `${field}.failRequests.status`, 400, 599);
    if (faults.failRequests.count !== undefined) int(faults.failRequests.count, `${field}.failRequests.count`, 0);
    if (faults.failRequests.retryAfterSeconds !== undefined) {
      int(faults.failRequests.retryAfterSeconds, `${field}.failRequests.retryAfterSeconds`, 0);
    }
  }
  for (const key of ["errorAfterTokens", "dropAfterTokens"] as const) {
    const fault = faults[key];
    if (!fault) continue;
    int(fault.tokens, `${field}.${key}.tokens`, 0);
    if (fault.count !== undefined) int(fault.count, `${field}.${key}.count`, 0);
  }
}
