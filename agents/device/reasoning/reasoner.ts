/**
 * The reasoning path of a DeviceAgent. An `up/reason` frame opens a turn; each engine round runs as a background
 * task (never holding the mailbox) and comes back as task events: progress -> `down/reason` chunks, done -> tools
 * or the final frame (or, when the engine refused the prompt as too long for its context window, the same round once
 * more without history: context-retry.ts), failed -> `down/error` plus a final frame with fr "error". Tools that need approval park
 * the turn until an operator resolves them (see approval-flow.ts). How a round's request is built and started is in
 * engine-round-start.ts.
 */
import type { ReasonRequestFrame, ReasonStreamFrame, Value } from "../../../codecs/frames.ts";
import { getCodec } from "../../../codecs/index.ts";
import type { ReasoningEngine } from "../../engine.ts";
import type { Connection, TaskInfo } from "../../types.ts";
import type { DeviceCore } from "../device-core.ts";
import { isValueMap } from "../values.ts";
import { afterRequestWrite } from "./after-request-write.ts";
import { ApprovalStore } from "./approval-store.ts";
import { onContextRefused } from "./context-retry.ts";
import { ConversationStore, newestTelemetryMark } from "./conversation-store.ts";
import { REASON_TASK_KIND, startEngineRound } from "./engine-round-start.ts";
import { fitFinalFrame, splitChunkText } from "./fit-frame.ts";
import { deviceContext, shadowContext } from "./prompt.ts";
import { currentHistory, historyOfTurn } from "./prompt-history.ts";
import { currentSystemMessage, systemMessageOfTurn } from "./prompt-system.ts";
import { parseContextRefusal, parseRoundResult, type RoundResult } from "./round.ts";
import type { ToolHost } from "./tools.ts";
import type { Turn, TurnOrigin } from "./turn.ts";
import { tryEndStrandedTurns } from "./stranded-turns.ts";
import { TurnStore } from "./turn-store.ts";
import { hasFreeSlot, startQueuedTurns } from "./turn-queue.ts";
import { endViewerTurns, VIEWER_STREAMS } from "./viewer-turns.ts";
import { REQUEST_ID_MAX, reasonRequestId, refusedRequestId } from "./request-id.ts";

export class Reasoner {
  readonly turns: TurnStore;
  readonly conversation: ConversationStore;
  readonly approvals: ApprovalStore;
  /**
   * The shadow's part of the device context, rendered at shadow revision `revision` (shadow-store.ts): a question
   * after one that saw the same shadow reads, decodes and renders nothing of it.
   */
  #shadowText: { revision: number; text: string } | undefined;

  constructor(
    readonly core: DeviceCore,
    readonly tools: ToolHost,
  ) {
    const { sql } = core.ports;
    const now = () => core.ports.now();
    this.turns = new TurnStore(sql, now);
    this.conversation = new ConversationStore(sql, now, core.options.maxMessageChars);
    this.approvals = new ApprovalStore(sql, now);
  }

  /** Handles `up/reason`: validates, checks the engine and the concurrency bound, opens a turn and its first round. */
  request(conn: Connection, frame: ReasonRequestFrame): Promise<void> | undefined {
    const { core } = this;
    const id = reasonRequestId(frame);
    if (id === null) {
      const message = `reason needs id (1-${REQUEST_ID_MAX} characters)`;
      core.sendError(conn, "BRIDGE_ERR_FRAME_INVALID", message, refusedRequestId(frame));
      return undefined;
    }
    if (typeof frame.q !== "string" || frame.q.trim().length === 0 || frame.q.length > core.options.maxQuestionChars) {
      core.sendError(
        conn,
        "BRIDGE_ERR_FRAME_INVALID",
        `reason needs q (1-${core.options.maxQuestionChars} characters)`,
        { id },
      );
      return undefined;
    }
    const engine = core.ports.engine();
    if (engine === undefined) {
      core.sendError(conn, "BRIDGE_ERR_ENGINE_NOT_CONFIGURED", "no reasoning engine is configured on this bridge", {
        id,
      });
      return undefined;
    }
    const origin = core.isDevice(conn) ? ("device" as const) : ("viewer" as const);
    // From memory (turn-store.ts): the turns that have not ended are read once per agent, not once per question.
    let busy = this.#busy(id, origin, conn.id);
    // A refusal for a running turn is checked first: a turn stranded without its round (stranded-turns.ts) would
    // refuse every later question for good. Ending one frees its slot, which goes to a queued turn first, as after
    // any turn's end. A question that is not refused costs nothing of this.
    if ((busy === "running" || busy === "full") && tryEndStrandedTurns(this, "message") > 0) {
      startQueuedTurns(this);
      busy = this.#busy(id, origin, conn.id);
    }
    // A turn parked for an approval or queued does not hold the device, but it keeps its id: it will still stream
    // under it.
    if (busy === "waiting") {
      core.sendError(
        conn,
        "BRIDGE_ERR_REASON_BUSY",
        `reasoning request ${id} is still open (waiting for an approval or a free slot)`,
        { id },
      );
      return undefined;
    }
    if (busy !== undefined) {
      const why =
        origin === "device"
          ? "a reasoning request of this device is still running"
          : busy === "running"
            ? `reasoning request ${id} of this viewer is still running`
            : `viewers' reasoning requests on this device are still running (${core.options.maxConcurrentViewerTurns} at most)`;
      core.sendError(conn, "BRIDGE_ERR_REASON_BUSY", why, { id });
      return undefined;
    }
    const askedMax = typeof frame.max === "bigint" ? Number(frame.max) : frame.max;
    const max =
      typeof askedMax === "number" && Number.isInteger(askedMax) && askedMax > 0
        ? askedMax
        : core.options.reasonDefaultMaxTokens;
    // Unsaid, the device streams as its hello said; a viewer is a WebSocket client, which takes streamed chunks.
    const stream =
      typeof frame.stream === "boolean"
        ? frame.stream
        : origin === "device"
          ? core.presence.profile().caps.stream
          : VIEWER_STREAMS;
    // With history in the prompt, the previous turn's snapshot is in it too: list only the readings stored since
    // it, so the volatile tail (the part the prefix cache cannot hold) stays small. Without history (none kept, none
    // finished yet, or the budget left none), the latest.
    const history = currentHistory(this);
    const { context, mark } = this.snapshot(newestTelemetryMark(history));
    const turnId = this.turns.nextId();
    const question = this.conversation.prepare(turnId, { role: "user", content: frame.q });
    const maxTokens = Math.min(max, core.options.reasonMaxTokensLimit);
    // The round starts before the turn row is written, so the row is written once, already running it; and the
    // question and the turn are written only after the engine request left (after-request-write.ts), with the event
    // still open: its COMMIT and the output gate follow them. The round's task row follows them too (the runtime
    // writes an eager task's row as the event ends, agents/tasks.ts). A failed write rolls the event back, which
    // aborts the round's request (an eager task's reports are held until the commit).
    const current = { context, messages: [question] };
    // Kept with the turn (its ids): every later round replays the history this one sends (prompt-history.ts), and
    // the system message it starts with (prompt-system.ts).
    const historyTurns = history.map((t) => t.turnId);
    const system = currentSystemMessage(this);
    const turn = {
      id: turnId,
      requestId: id,
      connId: conn.id,
      origin,
      question: frame.q,
      context,
      stream,
      maxTokens,
      historyTurns,
      systemMessage: system,
    };
    const taskId = startEngineRound(this, engine, turn, 0, { system, history, current });
    return afterRequestWrite().then(() => {
      this.conversation.store(question);
      this.turns.create(turn, taskId, mark);
    });
  }

  /**
   * Whether a question under request id `id`, from connection `connId` of `origin`, must wait: its id belongs to a
   * turn of the same asker that has not ended ("running", or "waiting" for an approval or a slot), or its origin's
   * slots are all taken ("full": the device's `maxConcurrentTurns`, the viewers' `maxConcurrentViewerTurns`).
   * Undefined when it may run. From memory.
   */
  #busy(id: string, origin: TurnOrigin, connId: string): "running" | "waiting" | "full" | undefined {
    const state = this.turns.open.requestState(id, origin, connId);
    if (state !== undefined) return state;
    return hasFreeSlot(this, origin) ? undefined : "full";
  }

  /** Starts the next engine round of `turn` as a background task; the last allowed one may not call tools. */
  startRound(turn: Turn): void {
    const engine = this.engineFor(turn);
    if (engine === undefined) return;
    const current = { context: turn.context, messages: this.conversation.turnMessages(turn.id) };
    const prompt = { system: systemMessageOfTurn(this, turn), history: historyOfTurn(this, turn), current };
    const taskId = startEngineRound(this, engine, turn, turn.round, prompt);
    this.turns.startRound(turn.id, taskId);
  }

  /**
   * The volatile device context, snapshotted now, and the newest telemetry row id it saw. `since`: list only the
   * readings stored after that row (the prompt's history holds the older ones), else the latest.
   */
  snapshot(since: number | undefined): { context: string; mark: number } {
    const { core } = this;
    const rows = core.options.promptTelemetryRows;
    const mark = core.telemetry.newestId();
    // The newest reading id is kept in memory by the store: when nothing was ever stored, or nothing after `since`,
    // there is nothing to list and nothing to read.
    const none = rows === 0 || mark === 0 || (since !== undefined && since >= mark);
    const telemetry = none
      ? []
      : since === undefined
        ? core.telemetry.query({ limit: rows })
        : core.telemetry.storedAfter(since, rows);
    const online = core.deviceConnections().length > 0;
    const context = deviceContext(core.ports.now(), online, this.#shadowContext(), telemetry, since !== undefined);
    return { context, mark };
  }

  /** The shadow as the prompt shows it, rendered again only after the shadow may have changed. */
  #shadowContext(): string {
    const { shadow } = this.core;
    const revision = shadow.revision;
    if (this.#shadowText?.revision !== revision) this.#shadowText = { revision, text: shadowContext(shadow.get()) };
    return this.#shadowText.text;
  }

  /** The configured engine; without one, `turn` fails with BRIDGE_ERR_ENGINE_NOT_CONFIGURED and this is undefined. */
  engineFor(turn: Turn): ReasoningEngine | undefined {
    const engine = this.core.ports.engine();
    if (engine === undefined) {
      this.fail(turn, "BRIDGE_ERR_ENGINE_NOT_CONFIGURED", "no reasoning engine is configured on this bridge");
    }
    return engine;
  }

  /** The turn a task event belongs to, only while that task is still the turn's current round. */
  turnOf(task: TaskInfo): Turn | undefined {
    if (task.kind !== REASON_TASK_KIND) return undefined;
    // By task id from memory first: a streamed chunk's event then never decodes the task's input (agents'
    // stored-task-info.ts). A round's task id names one turn, the one whose input the task carries.
    const cached = this.turns.cachedRound(task.id);
    if (cached !== undefined) return cached;
    if (!isValueMap(task.input) || typeof task.input.turnId !== "string") return undefined;
    return this.turns.current(task.input.turnId, task.id);
  }

  /**
   * Whether a turn's frames would reach anyone now (its own connection, or for a device's turn the device's current
   * session). `closingId`: a connection that is closing, and counts as gone.
   */
  hasRecipient(turn: Turn, closingId?: string): boolean {
    return this.target(turn, closingId) !== undefined;
  }

  /**
   * Where a turn's frames go: its own connection, else, for a turn the device asked, the device's current session
   * (after a takeover). A viewer's turn goes to that viewer only: the device never asked it.
   */
  private target(turn: Turn, closingId?: string): Connection | undefined {
    const own = this.core.ports.connection(turn.connId);
    if (own !== undefined && own.id !== closingId) return own;
    if (turn.origin === "viewer") return undefined;
    const devices = this.core.deviceConnections(closingId);
    return devices[devices.length - 1];
  }

  /**
   * The frame limit of a turn asked from `origin`: the device's hello `maxFrame` for the device's own turns (their
   * frames go to a device session), none for a viewer's (a WebSocket client), whose answer would otherwise be cut or
   * split, or lose every character, to fit the device. Coalescing (engine-round-start.ts), chunks and the final frame
   * all size to it.
   */
  maxFrameFor(origin: TurnOrigin): number | null {
    return origin === "device" ? this.core.presence.profile().caps.maxFrame : null;
  }

  onProgress(task: TaskInfo, update: Value): void {
    const turn = this.turnOf(task);
    if (turn === undefined || !isValueMap(update) || typeof update.text !== "string") return;
    const target = this.target(turn);
    if (target === undefined) {
      // Nobody to send to: the seq still advances, so a device that comes back sees the gap.
      this.turns.seqs.take(turn.id);
      return;
    }
    if (update.text === "") return;
    const maxFrame = this.maxFrameFor(turn.origin);
    // A delta that would not fit the device's maxFrame goes as several chunks, each measured in its codec. Without
    // a maxFrame there is nothing to measure: one chunk, no encoding on the side.
    const pieces =
      maxFrame === null
        ? [update.text]
        : splitChunkText(
            getCodec(target.codec),
            turn.requestId,
            update.text,
            maxFrame,
            this.turns.seqs.peek(turn.id) + update.text.length,
          );
    for (const text of pieces) {
      const seq = this.turns.seqs.take(turn.id);
      // Chunks go at QoS 0: a lost chunk shows as a gap in seq; the final frame (QoS 1) always arrives.
      target.send({ channel: "reason", frame: { id: turn.requestId, seq, text } }, { qos: 0 });
    }
  }

  onDone(task: TaskInfo, value: Value, continueWithTools: (turn: Turn, round: RoundResult) => void): void {
    const turn = this.turnOf(task);
    if (turn === undefined) return;
    const refusal = parseContextRefusal(value);
    if (refusal !== undefined) {
      onContextRefused(this, task, turn, refusal.message);
      return;
    }
    const round = parseRoundResult(value);
    this.turns.addUsage(turn.id, round.usage);
    if (!turn.stream && round.text.length > 0) this.turns.appendText(turn.id, round.text);
    const offeredTools = turn.round <= this.core.options.maxToolRounds;
    if (round.toolCalls.length > 0 && offeredTools) {
      this.conversation.append(turn.id, { role: "assistant", content: round.text || null, toolCalls: round.toolCalls });
      continueWithTools(turn, round);
      return;
    }
    this.conversation.append(turn.id, { role: "assistant", content: round.text });
    this.finish(turn.id, "done", round.finishReason);
  }

  onFailed(task: TaskInfo, error: { code: string; message: string }): void {
    const turn = this.turnOf(task);
    if (turn !== undefined) this.fail(turn, error.code, error.message);
  }

  /** A round was in flight at the last stop. Its partial output is gone, so the turn ends cleanly with an error. */
  onInterrupted(task: TaskInfo): void {
    const turn = this.turnOf(task);
    if (turn !== undefined)
      this.fail(turn, "BRIDGE_ERR_REASON_INTERRUPTED", "the bridge restarted during this request");
  }

  /** Ends a turn with `down/error` and a final frame with fr "error". */
  fail(turn: Turn, code: string, message: string): void {
    this.sendFailure(turn, code, message);
    this.finish(turn.id, code === "BRIDGE_ERR_REASON_INTERRUPTED" ? "interrupted" : "failed", "error");
  }

  /** The `down/error` of a turn that fails, with its request id, to where its frames go (if anywhere). */
  sendFailure(turn: Turn, code: string, message: string): void {
    const target = this.target(turn);
    // Through sendError, so an engine's long message is cut to the device's maxFrame.
    if (target !== undefined) this.core.sendError(target, code, message, { id: turn.requestId });
  }

  /**
   * Ends a turn (`end`), then prunes the finished turns beyond `conversationMaxTurns` and gives the slot it freed to
   * a queued turn.
   */
  finish(turnId: string, status: "done" | "failed" | "cancelled" | "interrupted", finishReason: string): void {
    if (!this.end(turnId, status, finishReason)) return;
    this.turns.prune(this.core.options.conversationMaxTurns);
    // Its slot is free: a turn queued for one takes it.
    startQueuedTurns(this);
  }

  /**
   * Records the end of a turn and sends the final frame (QoS 1), with the whole text for non-streaming devices; false
   * when the turn is gone. Nothing else (`finish` does the rest), so a stranded turn can be ended even when what
   * follows an end is what keeps failing (stranded-turns.ts).
   */
  end(turnId: string, status: "done" | "failed" | "cancelled" | "interrupted", finishReason: string): boolean {
    // The final frame's seq is taken before finish() writes the turn's seq, so the stored value counts it.
    const seq = this.turns.seqs.takeFinal(turnId);
    const turn = this.turns.finish(turnId, status, finishReason);
    if (turn === undefined) return false;
    const u = turn.usage;
    const target = this.target(turn);
    let frame: ReasonStreamFrame = {
      id: turn.requestId,
      seq,
      fin: true,
      fr: finishReason,
      u: { p: u.promptTokens, c: u.completionTokens, k: u.cachedTokens },
    };
    if (!turn.stream && turn.text !== "" && target !== undefined) {
      // One frame must fit the device's maxFrame, measured in its codec: the text is cut (and fr says "length")
      // rather than the frame lost.
      frame = fitFinalFrame(getCodec(target.codec), frame, turn.text, this.maxFrameFor(turn.origin));
    }
    target?.send({ channel: "reason", frame }, { qos: 1 });
    return true;
  }

  /**
   * A connection is closing. A viewer's turns end with it (viewer-turns.ts). For a device session: when no other
   * remains, the device's running generations are aborted (nobody is left to read them and the engine slot is freed);
   * after a takeover they follow the device to its new session. A device's turns waiting for an approval or queued
   * keep waiting. Either way, queued turns may take the slots this frees.
   */
  onConnectionClosing(closingId: string): void {
    const closing = this.core.ports.connection(closingId);
    if (closing !== undefined && !this.core.isDevice(closing)) {
      endViewerTurns(this, closingId);
    } else if (this.core.deviceConnections(closingId).length === 0) {
      for (const turn of this.turns.withStatus("running")) {
        // A viewer's turn still has its viewer: it ends with that connection, not with the device.
        if (turn.origin === "viewer") continue;
        this.turns.finish(turn.id, "cancelled", "cancelled");
        if (turn.taskId !== null) this.core.ports.cancelTask(turn.taskId);
      }
    }
    startQueuedTurns(this, closingId);
  }
}
