/**
 * How one engine round of a turn is built and started: the chat request (the system message, the finished turns, the
 * turn so far; tools while tool rounds are left; the configured model) and the background task that runs it (deltas
 * coalesced into chunks, the request leaving inside the event). Apart from reasoner.ts, which decides when a round
 * starts and handles what it reports; a plain function the reasoner calls in place of a method, so a question pays
 * no extra call.
 */
import type { ChatRequest, ReasoningEngine } from "../../engine.ts";
import { CHUNK_BATCH_DEFAULTS, coalesceProgress } from "./chunk-batcher.ts";
import { buildMessages, type PromptTurn } from "./prompt.ts";
import type { Reasoner } from "./reasoner.ts";
import { runRound } from "./round.ts";
import { DEVICE_TOOLS } from "./tools.ts";
import type { Turn } from "./turn.ts";

/** Task kind of an engine round. */
export const REASON_TASK_KIND = "device-reason";

/**
 * Starts round `round + 1` of `turn` (whose messages so far are `prompt.current`, after the system message
 * `prompt.system` and the finished turns `prompt.history`) as a background task on `engine` and returns its task id.
 */
export function startEngineRound(
  reasoner: Reasoner,
  engine: ReasoningEngine,
  turn: Pick<Turn, "id" | "origin" | "stream" | "maxTokens">,
  round: number,
  prompt: { system: string; history: readonly PromptTurn[]; current: PromptTurn },
): string {
  const { stream, maxTokens } = turn;
  const { options, ports } = reasoner.core;
  const request: ChatRequest = {
    messages: buildMessages({ system: prompt.system, history: prompt.history, turn: prompt.current }),
    maxTokens,
  };
  // Every round offers the tools, so every round's prompt starts with the same tokens (chat templates render the
  // tools first) and the engine's prefix cache serves the last round too; the last one may not call them.
  request.tools = DEVICE_TOOLS;
  if (round >= options.maxToolRounds) request.toolChoice = "none";
  if (options.model !== "") request.model = options.model;
  const body = runRound(engine, request, ports.id, stream, {
    timeoutMs: options.reasonTimeoutMs,
    priority: options.reasonPriority,
  });
  // Each progress update is a mailbox event and a packet: deltas are coalesced before they become either. A
  // flush never needs to exceed what one frame of the asker can carry (onProgress splits what does).
  const maxFrame = reasoner.maxFrameFor(turn.origin);
  const flushBytes = Math.max(1, Math.min(CHUNK_BATCH_DEFAULTS.flushBytes, maxFrame ?? Number.POSITIVE_INFINITY));
  return ports.startTask(
    REASON_TASK_KIND,
    // How many finished turns the prompt carried: a context-length refusal is worth a retry without them only
    // when there were some.
    { turnId: turn.id, history: prompt.history.length },
    stream
      ? coalesceProgress(body, {
          ...CHUNK_BATCH_DEFAULTS,
          flushIntervalMs: options.reasonChunkIntervalMs,
          busyFlushIntervalMs: options.reasonBusyChunkIntervalMs,
          flushBytes,
        })
      : body,
    // The engine request leaves inside this event, while its writes commit: the engine's prefill overlaps the
    // commit instead of waiting for it. Abandoning the round is safe (the abort closes the stream), so a
    // rolled-back event costs the engine a cancelled request and nothing else.
    { eager: true },
  );
}
