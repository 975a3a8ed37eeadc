/**
 * DeviceAgent options: one defaults object, validated once when the agent is constructed. Values come from the
 * bridge config (`agentConfig[ClassName]`, handed to the agent as `env.config`), over a subclass's
 * `static deviceOptions`, over `DEVICE_AGENT_DEFAULTS`.
 */
import { BridgeError } from "../../errors/bridge-error.ts";
import { MAX_TIMER_MS } from "../clock.ts";
import { CHUNK_BATCH_DEFAULTS } from "./reasoning/chunk-batcher.ts";
import { MIN_TOOL_OUTPUT_CHARS } from "./reasoning/tool-output-budget.ts";
import { wiredKeyRule } from "./wiring.ts";

/** Options of a DeviceAgent. Every field has a default; units are in the names. */
export interface DeviceAgentOptions {
  /** Telemetry rows older than this are deleted. Default 604800 (7 days). */
  telemetryMaxAgeSeconds: number;
  /** Most telemetry rows kept per device; the oldest go first. Default 100000. */
  telemetryMaxRows: number;
  /** Retention runs once every this many inserted rows, so it costs nothing per message. Default 500. */
  telemetryRetentionEveryRows: number;
  /** Most readings accepted from one telemetry frame; the rest are refused with an error frame. Default 256. */
  telemetryMaxReadingsPerFrame: number;
  /** A device timestamp older than now minus this is implausible (unset clock); server time is used. Default 2592000000 (30 days). */
  deviceTsMaxPastMs: number;
  /** A device timestamp later than now plus this is implausible; server time is used. Default 300000 (5 min). */
  deviceTsMaxFutureMs: number;
  /** Time to live of a command when `sendCommand` gives none. Default 3600, at most 315360000 (10 years). */
  commandTtlSeconds: number;
  /** Deliveries of a command before it fails, when `sendCommand` gives none. Default 5. */
  commandMaxAttempts: number;
  /** Finished commands kept for `getCommand`/`listCommands`; older ones are pruned. Default 1000. */
  commandHistoryMax: number;
  /**
   * Commands delivered to the device and not yet finished (acknowledged, failed or expired) at a time; the others
   * wait QUEUED, in order, for one of those to finish. Default 16: under the broker's default window of unacknowledged
   * QoS 1 frames per device (`mqtt.limits.maxUnackedDownPerDevice`, 20), with room for state and error frames.
   */
  commandMaxInFlight: number;
  /**
   * A delivered command not acknowledged this long after its latest delivery is delivered again while the device is
   * online (one of its attempts; out of attempts it fails), when `sendCommand` gives no `ackTimeoutSeconds`. 0: never
   * (only a reconnect redelivers). Default 300000 (5 min), at most 315360000000 (the longest TTL).
   */
  commandAckTimeoutMs: number;
  /** The stable system prompt, first in every reasoning prompt. */
  systemPrompt: string;
  /** Engine calls per reasoning turn that may call tools; the one after them gets `tool_choice: "none"`. Default 4. */
  maxToolRounds: number;
  /** Finished turns of history put in a prompt. Default 8. */
  maxHistoryTurns: number;
  /**
   * Most characters of history put in a prompt, counted as the turns are rendered (questions with their context
   * snapshots, tool calls and outputs, answers): whole turns, oldest dropped first (history-budget.ts). 0: no
   * history. Default 12000 (see HISTORY_CHARS_DEFAULT).
   */
  maxHistoryChars: number;
  /** Finished turns kept in the database (with their messages and approvals); older ones are pruned. Default 200. */
  conversationMaxTurns: number;
  /** A conversation message longer than this is compacted (head and tail kept, with a note). Default 16000. */
  maxMessageChars: number;
  /** A tool output longer than this is compacted before the model sees it. Default 4000. */
  maxToolOutputChars: number;
  /**
   * Most characters of tool output in one turn, all its rounds together (at least `maxToolOutputChars`): outputs
   * beyond it are cut to what is left, or left out with a note (tool-output-budget.ts). Default 8000 (see
   * TURN_TOOL_OUTPUT_CHARS_DEFAULT), or `maxToolOutputChars` when that is set higher and this is not set.
   */
  maxTurnToolOutputChars: number;
  /** A reasoning question longer than this is refused with BRIDGE_ERR_FRAME_INVALID. Default 4000. */
  maxQuestionChars: number;
  /**
   * Completion tokens when the reason frame gives no `max`. Default 512, or `reasonMaxTokensLimit` when that is set
   * lower and this is not set.
   */
  reasonDefaultMaxTokens: number;
  /** Upper bound on a reason frame's `max`. Default 4096. */
  reasonMaxTokensLimit: number;
  /**
   * Reasoning turns the device itself asked running at once (viewers' turns count apart, `maxConcurrentViewerTurns`);
   * more requests are refused with BRIDGE_ERR_REASON_BUSY, and turns resuming after an approval wait for a free slot
   * (turn-queue.ts). Default 1.
   */
  maxConcurrentTurns: number;
  /**
   * Reasoning turns that viewers (WebSocket clients on the agent, all of them together) run at once, apart from the
   * device's `maxConcurrentTurns`: a viewer's question never takes the device's slot. More viewer requests are
   * refused with BRIDGE_ERR_REASON_BUSY, and a viewer's turn resuming after an approval waits for a viewers' slot.
   * Default 1.
   */
  maxConcurrentViewerTurns: number;
  /** Recent telemetry rows put at the end of a prompt. Default 20. */
  promptTelemetryRows: number;
  /** Tools the model may call but only after an operator approves. Default ["send_command", "set_desired"]. */
  toolsRequiringApproval: string[];
  /** A pending approval not resolved within this is refused automatically. Default 86400 (1 day). */
  approvalTtlSeconds: number;
  /** Model name sent to the engine; the engine's default when empty. Default "". */
  model: string;
  /**
   * Longest time one engine round may take, queueing included; it becomes the request's deadline, so a stalled
   * engine ends the turn with BRIDGE_ERR_ENGINE_TIMEOUT instead of holding it forever. At most 2147483647 (the
   * longest Node timer). Default 120000 (2 min).
   */
  reasonTimeoutMs: number;
  /**
   * Priority of this agent class's engine requests among those waiting in the engine client's queue: higher runs
   * first. Any safe integer, negative included. Default 0.
   */
  reasonPriority: number;
  /**
   * Least time between two streamed `down/reason` chunks of one answer, ms: text arriving sooner goes out together.
   * The first text of an answer and its end are never held. 0 (with `reasonBusyChunkIntervalMs` 0 too) sends what
   * each read of the engine brought. At most 2147483647 (the longest Node timer). Default 50.
   */
  reasonChunkIntervalMs: number;
  /**
   * The chunk interval while the bridge process is busy (its event loop at least 80% utilized over the last 100 ms),
   * ms; never below `reasonChunkIntervalMs`. At most 2147483647. Default 100.
   */
  reasonBusyChunkIntervalMs: number;
}

export const DEFAULT_SYSTEM_PROMPT =
  "You are the agent of one IoT device on an edge gateway. Answer the device's questions briefly and factually from " +
  "its profile, its state and its telemetry. Use the tools to read more data or to act on the device; never invent " +
  "readings. Replies go to a small screen or a log: plain text, no markdown.";

/**
 * Longest command time to live, seconds (10 years): the expiry travels as `down/cmd` `exp` in ms since the epoch, an
 * unsigned safe integer, and a TTL beyond about 2^53 ms would make every delivery of the command fail to encode.
 */
export const COMMAND_TTL_MAX_SECONDS = 10 * 365 * 86_400;

/**
 * Default history budget, characters. About 3000 tokens at the usual 4 characters a token (4000 for JSON-dense text):
 * with the system prompt and tools (about 500 tokens), a question of up to `maxQuestionChars` (4000 characters,
 * about 1000 tokens), its context snapshot (about 400) and a 512-token answer, a prompt stays near 6000 tokens, well
 * under the 8192-token window that small models served at the edge commonly have. An engine with a smaller window
 * still answers: a round it refuses as too long is asked again without history (reasoner.ts).
 */
export const HISTORY_CHARS_DEFAULT = 12_000;

/**
 * Default budget of one turn's tool outputs, characters: two outputs of the default `maxToolOutputChars`. About 2700
 * tokens of JSON-dense text (3 characters a token); a turn asked without history (what a context-length refusal
 * leaves: system prompt and tools, a question of up to `maxQuestionChars`, its context snapshot, the tool calls and
 * outputs, and a 512-token answer) then stays near 5500 tokens, within the 8192-token window small models at the edge
 * commonly have, however many tool rounds the turn runs.
 */
export const TURN_TOOL_OUTPUT_CHARS_DEFAULT = 8000;

/** The defaults, in one place. */
export const DEVICE_AGENT_DEFAULTS: Readonly<DeviceAgentOptions> = Object.freeze({
  telemetryMaxAgeSeconds: 7 * 24 * 3600,
  telemetryMaxRows: 100_000,
  telemetryRetentionEveryRows: 500,
  telemetryMaxReadingsPerFrame: 256,
  deviceTsMaxPastMs: 30 * 24 * 3600 * 1000,
  deviceTsMaxFutureMs: 5 * 60 * 1000,
  commandTtlSeconds: 3600,
  commandMaxAttempts: 5,
  commandHistoryMax: 1000,
  commandMaxInFlight: 16,
  commandAckTimeoutMs: 5 * 60 * 1000,
  systemPrompt: DEFAULT_SYSTEM_PROMPT,
  maxToolRounds: 4,
  maxHistoryTurns: 8,
  maxHistoryChars: HISTORY_CHARS_DEFAULT,
  conversationMaxTurns: 200,
  maxMessageChars: 16_000,
  maxToolOutputChars: 4000,
  maxTurnToolOutputChars: TURN_TOOL_OUTPUT_CHARS_DEFAULT,
  maxQuestionChars: 4000,
  reasonDefaultMaxTokens: 512,
  reasonMaxTokensLimit: 4096,
  maxConcurrentTurns: 1,
  maxConcurrentViewerTurns: 1,
  promptTelemetryRows: 20,
  toolsRequiringApproval: ["send_command", "set_desired"],
  approvalTtlSeconds: 24 * 3600,
  model: "",
  reasonTimeoutMs: 120_000,
  reasonPriority: 0,
  reasonChunkIntervalMs: CHUNK_BATCH_DEFAULTS.flushIntervalMs,
  reasonBusyChunkIntervalMs: CHUNK_BATCH_DEFAULTS.busyFlushIntervalMs,
});

type NumberKey = {
  [K in keyof DeviceAgentOptions]: DeviceAgentOptions[K] extends number ? K : never;
}[keyof DeviceAgentOptions];

/** Smallest accepted value of each numeric option (all are integers). */
const MINIMUMS: Record<NumberKey, number> = {
  telemetryMaxAgeSeconds: 1,
  telemetryMaxRows: 1,
  telemetryRetentionEveryRows: 1,
  telemetryMaxReadingsPerFrame: 1,
  deviceTsMaxPastMs: 0,
  deviceTsMaxFutureMs: 0,
  commandTtlSeconds: 1,
  commandMaxAttempts: 1,
  commandHistoryMax: 1,
  commandMaxInFlight: 1,
  commandAckTimeoutMs: 0,
  maxToolRounds: 1,
  maxHistoryTurns: 0,
  maxHistoryChars: 0,
  conversationMaxTurns: 1,
  maxMessageChars: 256,
  maxToolOutputChars: MIN_TOOL_OUTPUT_CHARS,
  maxTurnToolOutputChars: MIN_TOOL_OUTPUT_CHARS,
  maxQuestionChars: 1,
  reasonDefaultMaxTokens: 1,
  reasonMaxTokensLimit: 1,
  maxConcurrentTurns: 1,
  maxConcurrentViewerTurns: 1,
  promptTelemetryRows: 0,
  approvalTtlSeconds: 1,
  reasonTimeoutMs: 1,
  reasonPriority: Number.MIN_SAFE_INTEGER,
  reasonChunkIntervalMs: 0,
  reasonBusyChunkIntervalMs: 0,
};

/**
 * Largest accepted value of the numeric options that arm a timer directly (a Node timer longer than MAX_TIMER_MS
 * fires after 1 ms instead), or that end up in a frame field with a bound.
 */
const MAXIMUMS: Partial<Record<NumberKey, number>> = {
  // The engine client arms the round's deadline as one timer.
  reasonTimeoutMs: MAX_TIMER_MS,
  // Not a timer: the expiry must stay a safe integer in the command frame.
  commandTtlSeconds: COMMAND_TTL_MAX_SECONDS,
  // Not a timer either (an alarm): a timeout past the longest TTL could never fire before the expiry.
  commandAckTimeoutMs: COMMAND_TTL_MAX_SECONDS * 1000,
  reasonChunkIntervalMs: MAX_TIMER_MS,
  reasonBusyChunkIntervalMs: MAX_TIMER_MS,
};

function fail(field: string, rule: string): never {
  throw new BridgeError("BRIDGE_ERR_CONFIG", `device agent option ${field} ${rule}`, { field, rule });
}

/**
 * Merges `layers` (lowest first) over the defaults and validates the result.
 * Unknown keys are refused so a typo in the config is not silently ignored. The bridge calls this for every
 * configured DeviceAgent class when it starts (`DeviceAgent.validateConfig`), so a bad option stops the start; each
 * agent's construction calls it again (a runtime built without the app gets the same check there).
 * @throws BridgeError BRIDGE_ERR_CONFIG, `details.field` naming the field and `details.rule` what it must be.
 */
export function resolveDeviceAgentOptions(
  ...layers: ReadonlyArray<Readonly<Record<string, unknown>> | undefined>
): DeviceAgentOptions {
  const out: DeviceAgentOptions = {
    ...DEVICE_AGENT_DEFAULTS,
    toolsRequiringApproval: [...DEVICE_AGENT_DEFAULTS.toolsRequiringApproval],
  };
  const target = out as unknown as Record<string, unknown>;
  const given = new Set<string>();
  for (const layer of layers) {
    if (layer === undefined) continue;
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      // A value that is wired in now (commandObserver) gets a rule that says where it goes.
      if (!Object.hasOwn(DEVICE_AGENT_DEFAULTS, key)) fail(key, wiredKeyRule(key) ?? "is not a known option");
      target[key] = value;
      given.add(key);
    }
  }
  // A default bound to stay on one side of another option follows that option when only the other was set, so that
  // setting one option alone never fails for a value nobody set. Not given: the turn's budget follows a
  // maxToolOutputChars raised above its default (a configuration written before the budget existed, one output of
  // 10000 characters say, still builds its agents), and the completion tokens of a frame without `max` stay within a
  // reasonMaxTokensLimit lowered below them (the limit would cut them anyway). A bad value of the option followed is
  // left for its own check below, which names it.
  if (!given.has("maxTurnToolOutputChars") && Number.isSafeInteger(out.maxToolOutputChars)) {
    out.maxTurnToolOutputChars = Math.max(TURN_TOOL_OUTPUT_CHARS_DEFAULT, out.maxToolOutputChars);
  }
  const limit = out.reasonMaxTokensLimit;
  if (!given.has("reasonDefaultMaxTokens") && Number.isSafeInteger(limit) && limit >= MINIMUMS.reasonMaxTokensLimit) {
    out.reasonDefaultMaxTokens = Math.min(DEVICE_AGENT_DEFAULTS.reasonDefaultMaxTokens, limit);
  }
  for (const [key, min] of Object.entries(MINIMUMS)) {
    const value = target[key];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
      fail(key, `must be an integer >= ${min}`);
    }
    const max = MAXIMUMS[key as NumberKey];
    if (max !== undefined && value > max) fail(key, `must be an integer from ${min} to ${max}`);
  }
  if (typeof out.systemPrompt !== "string" || out.systemPrompt.length === 0)
    fail("systemPrompt", "must be a non-empty string");
  if (typeof out.model !== "string") fail("model", "must be a string");
  if (!Array.isArray(out.toolsRequiringApproval) || !out.toolsRequiringApproval.every((t) => typeof t === "string")) {
    fail("toolsRequiringApproval", "must be an array of tool names");
  }
  if (out.maxTurnToolOutputChars < out.maxToolOutputChars) {
    fail("maxTurnToolOutputChars", `must be at least maxToolOutputChars (${out.maxToolOutputChars})`);
  }
  if (out.reasonDefaultMaxTokens > out.reasonMaxTokensLimit) {
    fail("reasonDefaultMaxTokens", "must not exceed reasonMaxTokensLimit");
  }
  return out;
}
