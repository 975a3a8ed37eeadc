import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import fc from "fast-check";
import { Agent, type AgentRuntime, type Connection, type InboundMessage } from "../../agents/index.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingTransport, settle, tempDir, testRuntime } from "./helpers.ts";

// A model check of the batch machinery (group commit, savepoints per event, nested transaction(), the output gate,
// state undo, SQLite losing a transaction on its own) against random sequences of events for a few agents. Some
// rounds are bursts of one agent's events, longer than the savepoints a batch nests (cell-batch.ts), so events past
// them commit and fail too.

/** One step of a handler. Steps inside `nested` run in transaction(), so they are all synchronous. */
type Op =
  | { t: "write" }
  | { t: "state" }
  | { t: "send" }
  | { t: "yield" }
  | { t: "throw" }
  /** A statement whose conflict makes SQLite roll the whole transaction back on its own (`INSERT OR ROLLBACK`). */
  | { t: "lose"; caught: boolean }
  | { t: "nested"; ops: Op[]; caught: boolean };

interface Plan {
  id: string;
  agent: number;
  via: "deliver" | "call";
  async: boolean;
  ops: Op[];
}

const AGENTS = ["m0", "m1", "m2"];

/** The order each agent's handlers began in, kept outside the agents so no rollback touches it. */
const ran = new Map<string, string[]>();

type ModelState = { last: string | null };

class ModelAgent extends Agent<ModelState> {
  override initialState: ModelState = { last: null };

  override onStart(): void {
    this.sql`CREATE TABLE IF NOT EXISTS rows (label TEXT NOT NULL)`;
    this.sql`CREATE TABLE IF NOT EXISTS u (k INTEGER PRIMARY KEY)`;
    this.sql`INSERT OR IGNORE INTO u (k) VALUES (1)`;
  }

  override onMessage(conn: Connection, message: InboundMessage): void | Promise<void> {
    const plan = message.frame as unknown as Plan;
    const send = (label: string) => conn.send({ channel: "rpc", frame: { id: label, ok: true, res: null } });
    return this.#run(plan, send);
  }

  act(plan: Plan): void | Promise<void> {
    const send = (label: string) =>
      this.getConnections()[0]?.send({ channel: "rpc", frame: { id: label, ok: true, res: null } });
    return this.#run(plan, send);
  }

  peek(): string | null {
    return this.state.last;
  }

  #run(plan: Plan, send: (label: string) => void): void | Promise<void> {
    const log = ran.get(this.id) ?? [];
    ran.set(this.id, log);
    log.push(plan.id);
    if (plan.async) return this.#execAsync(plan.ops, `${plan.id}/`, send);
    this.#exec(plan.ops, `${plan.id}/`, send);
  }

  async #execAsync(ops: Op[], prefix: string, send: (label: string) => void): Promise<void> {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      if (op.t === "yield") await new Promise<void>((r) => setImmediate(r));
      else this.#step(op, `${prefix}${i}`, send);
    }
  }

  #exec(ops: Op[], prefix: string, send: (label: string) => void): void {
    for (let i = 0; i < ops.length; i++) this.#step(ops[i], `${prefix}${i}`, send);
  }

  #step(op: Op, label: string, send: (label: string) => void): void {
    switch (op.t) {
      case "write":
        this.sql`INSERT INTO rows (label) VALUES (${label})`;
        return;
      case "state":
        this.setState({ last: label });
        return;
      case "send":
        send(label);
        return;
      case "yield":
        return;
      case "throw":
        throw new Error(`planned failure at ${label}`);
      case "lose":
        try {
          this.sql`INSERT OR ROLLBACK INTO u (k) VALUES (1)`;
        } catch (err) {
          if (!op.caught) throw err;
        }
        return;
      case "nested":
        try {
          this.transaction(() => this.#exec(op.ops, `${label}.`, send));
        } catch (err) {
          if (!op.caught) throw err;
        }
        return;
    }
  }
}

/** What an event does when it commits: its rows, frames and last state, in order. */
interface Effects {
  ok: boolean;
  /** SQLite rolled the transaction back under it: the event fails whatever its handler did after. */
  lost: boolean;
  rows: string[];
  frames: string[];
  state: string | null | undefined;
}

function simulate(ops: Op[], prefix: string): Effects {
  const e: Effects = { ok: true, lost: false, rows: [], frames: [], state: undefined };
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    const label = `${prefix}${i}`;
    if (op.t === "write") e.rows.push(label);
    else if (op.t === "state") e.state = label;
    else if (op.t === "send") e.frames.push(label);
    else if (op.t === "throw") {
      e.ok = false;
      return e;
    } else if (op.t === "lose") {
      e.lost = true;
      if (!op.caught) {
        e.ok = false;
        return e;
      }
    } else if (op.t === "nested") {
      const inner = simulate(op.ops, `${label}.`);
      e.lost ||= inner.lost;
      if (inner.ok && !inner.lost) {
        e.rows.push(...inner.rows);
        e.frames.push(...inner.frames);
        if (inner.state !== undefined) e.state = inner.state;
      } else if (!op.caught) {
        e.ok = false;
        return e;
      }
    }
  }
  if (e.lost) e.ok = false;
  return e;
}

const syncOp: fc.Arbitrary<Op> = fc.letrec<{ op: Op }>((tie) => ({
  op: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { arbitrary: fc.constant<Op>({ t: "write" }), weight: 5 },
    { arbitrary: fc.constant<Op>({ t: "state" }), weight: 2 },
    { arbitrary: fc.constant<Op>({ t: "send" }), weight: 3 },
    { arbitrary: fc.constant<Op>({ t: "throw" }), weight: 1 },
    { arbitrary: fc.boolean().map((caught): Op => ({ t: "lose", caught })), weight: 1 },
    {
      arbitrary: fc
        .record({ ops: fc.array(tie("op"), { maxLength: 4 }), caught: fc.boolean() })
        .map(({ ops, caught }): Op => ({ t: "nested", ops, caught })),
      weight: 2,
    },
  ),
})).op;

const planShape = fc.record({
  agent: fc.integer({ min: 0, max: AGENTS.length - 1 }),
  via: fc.constantFrom<"deliver" | "call">("deliver", "deliver", "call"),
  async: fc.boolean(),
  ops: fc.array(fc.oneof({ arbitrary: syncOp, weight: 4 }, { arbitrary: fc.constant<Op>({ t: "yield" }), weight: 1 }), {
    maxLength: 6,
  }),
});

/** Events for one agent only, more than the group commit nests savepoints for (NESTED_SAVEPOINTS, cell-batch.ts). */
const burst = fc.array(
  planShape.map((p) => ({ ...p, agent: 0 })),
  { minLength: 10, maxLength: 14 },
);

const scenario = fc.record({
  maxBatchEvents: fc.constantFrom(1, 3, 64),
  rounds: fc.array(
    fc.oneof(
      { arbitrary: fc.array(planShape, { minLength: 1, maxLength: 8 }), weight: 4 },
      { arbitrary: burst, weight: 1 },
    ),
    { minLength: 1, maxLength: 5 },
  ),
});

/** Where in a deep batch (one agent's events of a burst, one batch) an event failed or committed on its own. */
const DEEP = 10;

/** What one agent should hold: every committed event's rows and frames in order, and the last committed state. */
interface Expected {
  rows: string[];
  frames: string[];
  state: string | null;
  ran: string[];
}

function readRows(dataDir: string, agentId: string): string[] {
  const db = new Database(path.join(dataDir, "agents", `${agentId}.db`), { readonly: true });
  try {
    return (db.prepare("SELECT label FROM rows ORDER BY rowid").all() as Array<{ label: string }>).map((r) => r.label);
  } finally {
    db.close();
  }
}

async function peek(rt: AgentRuntime, agentId: string): Promise<string | null> {
  const r = await rt.call(agentId, "peek", []);
  assert.ok(r.ok, `peek failed: ${JSON.stringify(r)}`);
  return r.value as string | null;
}

describe("the batch machinery against a model of committed events", () => {
  const t = tempDir("agents-model-");
  after(() => t.remove());

  test("after every drained batch each agent holds exactly its committed events' rows, frames and last state", async () => {
    let run = 0;
    // What the runs exercised, so a generator that stopped producing the interesting cases fails the test.
    const seen = {
      committed: 0,
      failed: 0,
      failedByLoss: 0,
      asyncCommitted: 0,
      nestedCaught: 0,
      // One batch of more events than the nested savepoints: an event past them committed or failed alone, and one
      // among them failed alone.
      deepCommitted: 0,
      deepFailed: 0,
      nestedFailedInDeep: 0,
    };
    await fc.assert(
      fc.asyncProperty(scenario, async ({ maxBatchEvents, rounds }) => {
        const dataDir = path.join(t.dir, `run-${++run}`);
        ran.clear();
        // Both runtimes of a run share one clock.
        const extra = {
          clock: new ManualClock(),
          // NORMAL so the test reads each database from a second connection between rounds.
          lockingMode: "NORMAL" as const,
          maxBatchEvents,
        };
        let rt = testRuntime(dataDir, ModelAgent, 1, extra);
        const transports = AGENTS.map(() => new RecordingTransport());
        const expected: Expected[] = AGENTS.map(() => ({ rows: [], frames: [], state: null, ran: [] }));
        try {
          for (let a = 0; a < AGENTS.length; a++) {
            const opened = await rt.open(AGENTS[a], { id: "c", kind: "mqtt", codec: "cbor", transport: transports[a] });
            assert.deepEqual(opened, { status: "committed" });
          }
          let seq = 0;
          for (const round of rounds) {
            // Delivered in one turn, so each agent's events of the round share batches (group commit).
            const plans: Plan[] = round.map((p) => ({ ...p, id: `e${++seq}` }));
            const results = plans.map((plan) => {
              const agentId = AGENTS[plan.agent];
              if (plan.via === "call") return rt.call(agentId, "act", [plan as never]).then((r) => r.ok);
              const d = rt.deliver(agentId, "c", { channel: "rpc", frame: plan as never });
              assert.ok(d.accepted);
              return d.done.then((r) => r.status === "committed");
            });
            const committed = await Promise.all(results);
            await settle();
            const lostIn = new Set(plans.filter((p) => simulate(p.ops, `${p.id}/`).lost).map((p) => p.agent));
            // A burst: every event of the round is agent 0's, in one batch.
            const deep = maxBatchEvents >= plans.length && plans.length >= DEEP && plans.every((p) => p.agent === 0);
            for (let i = 0; i < plans.length; i++) {
              const plan = plans[i];
              const model = simulate(plan.ops, `${plan.id}/`);
              const exp = expected[plan.agent];
              exp.ran.push(plan.id);
              if (committed[i]) {
                assert.ok(model.ok, `${plan.id} reported committed, but the model says it fails`);
                seen.committed++;
                if (plan.async && plan.ops.some((op) => op.t === "yield")) seen.asyncCommitted++;
                if (plan.ops.some((op) => op.t === "nested" && op.caught && !simulate(op.ops, "").ok)) {
                  seen.nestedCaught++;
                }
                if (deep && i >= DEEP - 1) seen.deepCommitted++;
                exp.rows.push(...model.rows);
                exp.frames.push(...model.frames);
                if (model.state !== undefined) exp.state = model.state;
              } else if (!lostIn.has(plan.agent)) {
                // Only a transaction SQLite lost takes other events of the batch down with it.
                assert.equal(model.ok, false, `${plan.id} failed, but the model says it commits`);
                seen.failed++;
                if (deep && i >= DEEP - 1) seen.deepFailed++;
                if (deep && i > 0 && i < DEEP - 1 && plans.length > DEEP) seen.nestedFailedInDeep++;
              } else {
                seen.failed++;
                if (model.ok) seen.failedByLoss++;
              }
            }
            for (let a = 0; a < AGENTS.length; a++) {
              const exp = expected[a];
              assert.deepEqual(ran.get(AGENTS[a]) ?? [], exp.ran, `${AGENTS[a]}: events ran out of order`);
              assert.deepEqual(readRows(dataDir, AGENTS[a]), exp.rows, `${AGENTS[a]}: stored rows`);
              assert.deepEqual(
                transports[a].sent.map((s) => (s.message.frame as { id: string }).id),
                exp.frames,
                `${AGENTS[a]}: frames sent`,
              );
              assert.equal(await peek(rt, AGENTS[a]), exp.state, `${AGENTS[a]}: state in memory`);
            }
          }
          await rt.shutdown();
          // The stored state is the last committed one too: a fresh runtime loads it from disk.
          rt = testRuntime(dataDir, ModelAgent, 1, extra);
          for (let a = 0; a < AGENTS.length; a++) {
            assert.equal(await peek(rt, AGENTS[a]), expected[a].state, `${AGENTS[a]}: stored state`);
            assert.deepEqual(readRows(dataDir, AGENTS[a]), expected[a].rows);
          }
        } finally {
          await rt.shutdown();
        }
      }),
      { seed: 20261127, numRuns: 100 },
    );
    for (const [what, n] of Object.entries(seen)) assert.ok(n > 0, `no run exercised ${what}`);
  });
});
