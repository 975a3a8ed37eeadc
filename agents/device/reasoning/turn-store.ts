/**
 * Reasoning turns: one per `up/reason` request. A turn runs engine rounds (one background task each) until the
 * model answers without tool calls, waits while a tool needs an operator's approval, then waits in the queue for its
 * next round (a free slot of its origin and someone to answer: turn-queue.ts), and ends done, failed,
 * cancelled or interrupted. Everything needed to resume is here, so a restart loses nothing but the round in flight.
 */
import type { ChatUsage } from "../../engine.ts";
import type { SqlTag } from "../sql.ts";
import { newestDoneFinishOrder } from "./conversation-store.ts";
import { isOpenStatus, OpenTurns } from "./open-turns.ts";
import { type Turn, type TurnRow, type TurnStatus, toTurn, turnOrigin } from "./turn.ts";
import { SEQ_RESERVE, TurnSeqs } from "./turn-seqs.ts";

/** Per-agent usage totals (`getUsage()`). */
export interface UsageTotals {
  requests: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
}

/**
 * Reads and writes reason_turns and reason_usage.
 *
 * The streaming path is kept off SQLite: a streamed chunk costs no statement. A turn's chunk seqs are kept by `seqs`
 * (turn-seqs.ts), written with the turn's status changes. A running round's turn is read once and kept per task id
 * until a write to that turn.
 *
 * This store is the only writer of reason_turns, so the turns that have not ended (`open`, open-turns.ts) are read
 * once and then kept in step with every write here: an `up/reason` refuses a busy id or one turn too many, and a
 * turn's end looks for a queued one, without a statement. After a rolled-back event they are read again
 * (`invalidate`).
 */
export class TurnStore {
  /** The turns' chunk seqs. */
  readonly seqs: TurnSeqs;
  /** Snapshot of a running turn, by the task id of its current round (see `current`). */
  readonly #byTask = new Map<string, Turn>();
  /** Number of the next turn id; undefined until first needed (read from the database). */
  #nextNumber: number | undefined;
  /** Finished turns in the database, counted once and kept exact by `finish` and `prune`; undefined: count again. */
  #finished: number | undefined;
  /** Finish order of the newest turn that ended done (0: none); undefined: read it again (`newestDone`). */
  #newestDone: number | undefined;

  /**
   * The turns not ended, read from memory (open-turns.ts); asked directly, with no call through this store, as every
   * question asks. Only this store writes them.
   */
  readonly open: OpenTurns;

  constructor(
    private readonly sql: SqlTag,
    private readonly now: () => number,
  ) {
    this.open = new OpenTurns(sql);
    this.seqs = new TurnSeqs(sql);
  }

  /**
   * A fresh turn id: sequential per agent, so ids are deterministic in tests and unique per database. The table is
   * scanned once per agent in memory, not once per request (the scan was a visible share of an `up/reason`).
   */
  nextId(): string {
    // MAX of the numeric suffix rather than COUNT: old turns are pruned, ids must never repeat.
    this.#nextNumber ??= Number(
      this.sql<{ n: number }>`SELECT COALESCE(MAX(CAST(substr(id, 6) AS INTEGER)), 0) + 1 AS n FROM reason_turns`[0].n,
    );
    return `turn-${this.#nextNumber++}`;
  }

  /**
   * Forgets what memory holds ahead of the database (after a rolled-back event): the next id, the count of finished
   * turns and the open turns are read again.
   */
  invalidate(): void {
    this.#nextNumber = undefined;
    this.#finished = undefined;
    this.open.invalidate();
    this.#newestDone = undefined;
    this.seqs.invalidate();
  }

  /**
   * The finish order (reason_turns.finish_order) of the newest turn that ended done (0 when none), which places the
   * history window (conversation-store.ts). Every question with history asks, so it is read once per agent and kept
   * exact by the writes of this store: a turn ending done takes the next finish order, so it is the newest done turn;
   * pruning that deletes it, a write that may change the status of a turn that had ended, and a rollback make it read
   * again.
   */
  newestDone(): number {
    this.#newestDone ??= newestDoneFinishOrder(this.sql);
    return this.#newestDone;
  }

  /**
   * A write is about to change the status of turn `id`: when that turn may have ended (it is not known open), it may
   * have been the newest done one, which is read again when next needed.
   */
  #mayReopen(id: string): void {
    if (!this.open.isKnownOpen(id)) this.#newestDone = undefined;
  }

  /**
   * Deletes finished turns beyond the `keep` that finished last, with their messages and resolved approvals, so a
   * device that talks for years keeps a bounded database. Returns turns deleted.
   */
  prune(keep: number): number {
    // Counted once per agent in memory: a request no longer sorts every finished turn (about 80 us at 200 turns)
    // to find the ones beyond `keep`; the oldest are found by walking the finish_order index, the order the turns
    // finished in. Not insertion order: a turn asked early that waited long for an operator would be deleted the
    // moment it finished, its answer with it. Not finished_at either: after the wall clock went back (an NTP
    // correction), the turn just finished would look oldest and be deleted at once, and every later one with it.
    this.#finished ??= Number(
      this.sql<{ n: number }>`SELECT COUNT(*) AS n FROM reason_turns
        WHERE status IN ('done', 'failed', 'cancelled', 'interrupted')`[0].n,
    );
    const excess = this.#finished - keep;
    if (excess <= 0) return 0;
    // `+status`: not the status index, whose rows would all be read and sorted; the walk stops after `excess` (past
    // the few open turns, whose finish_order is NULL).
    const old = this.sql<{ id: string; finish_order: number }>`SELECT id, finish_order FROM reason_turns
      WHERE +status IN ('done', 'failed', 'cancelled', 'interrupted')
      ORDER BY finish_order ASC LIMIT ${excess}`;
    this.#finished -= old.length;
    for (const { id, finish_order } of old) {
      if (Number(finish_order) === this.#newestDone) this.#newestDone = undefined;
      this.sql`DELETE FROM conversation WHERE turn_id = ${id}`;
      this.sql`DELETE FROM approvals WHERE turn_id = ${id} AND status != 'pending'`;
      this.sql`DELETE FROM reason_turns WHERE id = ${id}`;
      this.seqs.forget(id);
      this.#forget(id);
    }
    return old.length;
  }

  /**
   * Opens a turn already running its first round as task `taskId` (the round is started first, in the same event,
   * so the row is written once); `telemetryMark` is the newest telemetry row id its context snapshot saw,
   * `input.historyTurns` the finished turns that round carried and `input.systemMessage` the system message it sent
   * (prompt-system.ts). The turn is built from what was written, with no RETURNING and no SELECT, and is what
   * `current` serves to the round's first task event (which runs only after this event committed).
   */
  create(
    input: Pick<
      Turn,
      | "id"
      | "requestId"
      | "connId"
      | "origin"
      | "question"
      | "context"
      | "stream"
      | "maxTokens"
      | "historyTurns"
      | "systemMessage"
    >,
    taskId: string,
    telemetryMark?: number,
  ): Turn {
    const createdAt = this.now();
    const historyTurns = input.historyTurns === undefined ? undefined : [...input.historyTurns];
    this.sql`INSERT INTO reason_turns
      (id, request_id, conn_id, origin, question, context, status, stream, max_tokens, round, task_id, created_at,
        telemetry_mark, seq, history_turns, system_message)
      VALUES (${input.id}, ${input.requestId}, ${input.connId}, ${input.origin}, ${input.question}, ${input.context},
        'running', ${input.stream ? 1 : 0}, ${input.maxTokens}, 1, ${taskId}, ${createdAt}, ${telemetryMark ?? null},
        ${SEQ_RESERVE}, ${historyTurns === undefined ? null : JSON.stringify(historyTurns)},
        ${input.systemMessage ?? null})`;
    this.open.track(input.id, input, "running");
    this.seqs.opened(input.id);
    this.#forget(input.id);
    const turn: Turn = {
      id: input.id,
      requestId: input.requestId,
      connId: input.connId,
      origin: input.origin,
      question: input.question,
      context: input.context,
      withoutHistory: false,
      stream: input.stream,
      maxTokens: input.maxTokens,
      status: "running",
      round: 1,
      seq: 0,
      text: "",
      taskId,
      usage: { promptTokens: 0, cachedTokens: 0, completionTokens: 0 },
      finishReason: null,
      createdAt,
    };
    if (historyTurns !== undefined) turn.historyTurns = historyTurns;
    if (input.systemMessage !== undefined) turn.systemMessage = input.systemMessage;
    this.#byTask.set(taskId, turn);
    return turn;
  }

  /** The turn as stored, with `seq` the next chunk seq (which may be ahead of the database while it streams). */
  get(id: string): Turn | undefined {
    const rows = this.sql<TurnRow>`SELECT * FROM reason_turns WHERE id = ${id}`;
    if (rows.length === 0) return undefined;
    const turn = toTurn(rows[0]);
    turn.seq = this.seqs.next(id) ?? turn.seq;
    return turn;
  }

  /**
   * Turn `turnId` while it runs round `taskId`, else undefined. Served from memory, so a streamed chunk costs no
   * SELECT: filled by `startRound` with the row it wrote (a task event runs only after that write committed), else
   * here, at the start of a task event and before that event's own writes; so it holds committed state when a task
   * event reads it. Every write to the turn through this store drops it. Do not mutate it.
   */
  current(turnId: string, taskId: string): Turn | undefined {
    const cached = this.#byTask.get(taskId);
    if (cached !== undefined && cached.id === turnId) return cached;
    const turn = this.get(turnId);
    if (turn === undefined || turn.status !== "running" || turn.taskId !== taskId) return undefined;
    this.#byTask.set(taskId, turn);
    return turn;
  }

  /**
   * The turn whose current round is task `taskId` when memory holds it (as `current` would return it), else undefined:
   * how a task event finds its turn without reading the task's input.
   */
  cachedRound(taskId: string): Turn | undefined {
    return this.#byTask.get(taskId);
  }

  #forget(id: string): void {
    for (const [taskId, turn] of this.#byTask) if (turn.id === id) this.#byTask.delete(taskId);
  }

  /** The turns connection `connId` asked that have not ended (running, waiting for an approval, queued). */
  openOf(connId: string): Turn[] {
    if (!this.open.any()) return [];
    return this.sql<TurnRow>`SELECT * FROM reason_turns
      WHERE status IN ('running', 'awaiting_approval', 'queued') AND conn_id = ${connId}
      ORDER BY rowid ASC`.map(toTurn);
  }

  /**
   * The queued turns, in the order they were asked (insertion order, so a wall clock set back does not reorder
   * them). No statement while none is queued (every turn's end asks).
   */
  queued(): Turn[] {
    if (!this.open.has("queued")) return [];
    const turns = this.sql<TurnRow>`SELECT * FROM reason_turns WHERE status = 'queued' ORDER BY rowid ASC`.map(toTurn);
    for (const turn of turns) turn.seq = this.seqs.next(turn.id) ?? turn.seq;
    return turns;
  }

  /** Turns with `status`, oldest first. No statement for a status no open turn has. */
  withStatus(status: TurnStatus): Turn[] {
    if (isOpenStatus(status) && !this.open.has(status)) return [];
    return this.sql<TurnRow>`SELECT * FROM reason_turns WHERE status = ${status}
      ORDER BY created_at ASC, rowid ASC`.map(toTurn);
  }

  /**
   * A new engine round began as background task `taskId`. The updated row (RETURNING, no extra SELECT) is what
   * `current` serves to the round's first task event, which then reads nothing: that event runs only after this one
   * committed (a rolled-back event starts no task, so its entry is never looked up; the turn id's next write or
   * reuse drops it).
   */
  startRound(id: string, taskId: string): void {
    this.#forget(id);
    this.#mayReopen(id);
    // A status change this store does not count: the finished turns are counted again when next needed.
    this.#finished = undefined;
    const [row] = this
      .sql<TurnRow>`UPDATE reason_turns SET status = 'running', round = round + 1, task_id = ${taskId} WHERE id = ${id}
      RETURNING *`;
    if (row === undefined) return;
    const turn = toTurn(row);
    this.open.track(id, turn, row.status);
    turn.seq = this.seqs.next(id) ?? turn.seq;
    this.#byTask.set(taskId, turn);
  }

  /**
   * The engine refused the turn's current round as too long for its context window; the round is asked again as
   * task `taskId`, without history, from now on for every round of the turn. `context` is the turn's new snapshot
   * (the old one may list only the readings since a turn the prompt no longer carries) and `telemetryMark` the newest
   * telemetry row id it saw. The round number stays: a refused round used none of the turn's tool rounds. Cached for
   * the retry's first task event, as `startRound` does.
   */
  retryWithoutHistory(id: string, taskId: string, context: string, telemetryMark: number): void {
    this.#forget(id);
    const [row] = this.sql<TurnRow>`UPDATE reason_turns SET without_history = 1, context = ${context},
      telemetry_mark = ${telemetryMark}, task_id = ${taskId} WHERE id = ${id} RETURNING *`;
    if (row === undefined) return;
    const turn = toTurn(row);
    turn.seq = this.seqs.next(id) ?? turn.seq;
    this.#byTask.set(taskId, turn);
  }

  /** Changes the status; the chunk seq is written too, as a parked turn may outlive this agent in memory. */
  setStatus(id: string, status: TurnStatus): void {
    this.#forget(id);
    this.#mayReopen(id);
    this.#finished = undefined;
    const [row] = this.sql<Pick<TurnRow, "request_id" | "origin" | "conn_id" | "seq">>`UPDATE reason_turns
      SET status = ${status}, task_id = NULL, seq = COALESCE(${this.seqs.next(id) ?? null}, seq) WHERE id = ${id}
      RETURNING request_id, origin, conn_id, seq`;
    if (row === undefined) return;
    this.seqs.stored(id, Number(row.seq));
    this.open.track(id, { requestId: row.request_id, origin: turnOrigin(row.origin), connId: row.conn_id }, status);
  }

  /** Keeps answer text for a device that takes only one final frame. */
  appendText(id: string, text: string): void {
    this.#forget(id);
    this.sql`UPDATE reason_turns SET text = text || ${text} WHERE id = ${id}`;
  }

  /** Adds one round's usage to the turn and to the agent's totals. */
  addUsage(id: string, usage: ChatUsage): void {
    this.#forget(id);
    this.sql`UPDATE reason_turns SET prompt_tokens = prompt_tokens + ${usage.promptTokens},
      cached_tokens = cached_tokens + ${usage.cachedTokens}, completion_tokens = completion_tokens + ${usage.completionTokens}
      WHERE id = ${id}`;
    this.sql`UPDATE reason_usage SET requests = requests + 1, prompt_tokens = prompt_tokens + ${usage.promptTokens},
      cached_tokens = cached_tokens + ${usage.cachedTokens}, completion_tokens = completion_tokens + ${usage.completionTokens}
      WHERE id = 1`;
  }

  /**
   * Ends the turn, writing its final chunk seq once, and drops its system message: only its rounds send it (the
   * history carries no system message), and kept with every finished turn it would store the system prompt
   * `conversationMaxTurns` times. Returns the turn as stored now (undefined when it is gone).
   */
  finish(id: string, status: "done" | "failed" | "cancelled" | "interrupted", finishReason: string): Turn | undefined {
    this.#forget(id);
    const seq = this.seqs.next(id) ?? null;
    // A turn that was not finished yet becomes one more finished turn; finishing a finished turn again (not done by
    // the reasoner, kept as it was) does not count twice. Either way it is now the one that finished last (pruning
    // goes by finish_order): the index makes its MAX one lookup.
    let [row] = this.sql<TurnRow>`UPDATE reason_turns SET status = ${status}, finish_reason = ${finishReason},
      task_id = NULL, finished_at = ${this.now()}, seq = COALESCE(${seq}, seq), system_message = NULL,
      finish_order = (SELECT COALESCE(MAX(finish_order), 0) + 1 FROM reason_turns)
      WHERE id = ${id} AND status NOT IN ('done', 'failed', 'cancelled', 'interrupted') RETURNING *`;
    if (row !== undefined) {
      if (this.#finished !== undefined) this.#finished++;
    } else {
      // A turn that had ended ends again: it may have been the newest done one.
      this.#newestDone = undefined;
      [row] = this.sql<TurnRow>`UPDATE reason_turns SET status = ${status}, finish_reason = ${finishReason},
        task_id = NULL, finished_at = ${this.now()}, seq = COALESCE(${seq}, seq),
        finish_order = (SELECT COALESCE(MAX(finish_order), 0) + 1 FROM reason_turns) WHERE id = ${id} RETURNING *`;
    }
    if (row === undefined) return undefined;
    // It took the next finish order: ended done, it is the newest done turn (and the history window's last).
    if (status === "done") this.#newestDone = Number(row.finish_order);
    this.seqs.stored(id, Number(row.seq));
    const turn = toTurn(row);
    this.open.track(id, turn, row.status);
    turn.seq = this.seqs.next(id) ?? turn.seq;
    return turn;
  }

  usage(): UsageTotals {
    const row = this.sql<{ requests: number; prompt_tokens: number; cached_tokens: number; completion_tokens: number }>`
      SELECT requests, prompt_tokens, cached_tokens, completion_tokens FROM reason_usage WHERE id = 1`[0];
    return {
      requests: Number(row?.requests ?? 0),
      promptTokens: Number(row?.prompt_tokens ?? 0),
      cachedTokens: Number(row?.cached_tokens ?? 0),
      completionTokens: Number(row?.completion_tokens ?? 0),
    };
  }
}
