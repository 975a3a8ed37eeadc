/** Pure parts of the DeviceAgent: values, SenML, time plausibility, compaction, options, stores on a bare SQLite. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Database from "better-sqlite3";
import { CommandOutbox } from "../../agents/device/command-outbox.ts";
import { resolveDeviceAgentOptions } from "../../agents/device/options.ts";
import { compactText } from "../../agents/device/reasoning/compact.ts";
import { ConversationStore, historyWindowBase } from "../../agents/device/reasoning/conversation-store.ts";
import { buildMessages, deviceContext, shadowContext } from "../../agents/device/reasoning/prompt.ts";
import { SEQ_RESERVE } from "../../agents/device/reasoning/turn-seqs.ts";
import { TurnStore } from "../../agents/device/reasoning/turn-store.ts";
import { migrateDeviceSchema } from "../../agents/device/schema.ts";
import { ShadowStore } from "../../agents/device/shadow-store.ts";
import type { SqlTag, SqlValue } from "../../agents/device/sql.ts";
import { plausibleTime, readingsFromFrame, resolveSenml } from "../../agents/device/telemetry-readings.ts";
import { TelemetryStore } from "../../agents/device/telemetry-store.ts";
import { decodeValue, deepEqual, mergePatch, shadowDelta } from "../../agents/device/values.ts";
import { BridgeError } from "../../errors/bridge-error.ts";
import { memorySql, recordingSql, sqlTagOf } from "./device-sql.ts";
import { DEVICE_SCHEMA_V3_DDL } from "./fixtures/device-schema-v3.ts";

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const policy = { now: NOW, maxPastMs: 30 * 86_400_000, maxFutureMs: 300_000 };

describe("shadow values", () => {
  test("a merge patch deletes keys set to null and merges nested maps", () => {
    const out = mergePatch({ a: 1, b: { c: 2, d: 3 }, e: 5 }, { a: null, b: { c: 9, d: null }, f: [1] });
    assert.deepEqual(out, { b: { c: 9 }, e: 5, f: [1] });
  });

  test("the delta lists only desired keys whose value differs from reported, comparing deeply", () => {
    const delta = shadowDelta(
      { t: 21, mode: "eco", fan: { speed: 2, on: true } },
      { t: 21, mode: "off", fan: { speed: 2, on: false }, x: 1 },
    );
    assert.deepEqual(delta, { mode: "eco", fan: { on: true } });
    assert.deepEqual(shadowDelta({ a: [1, 2] }, { a: [1, 2] }), {});
  });

  test("deep equality treats a bigint and the same integer number as equal and compares bytes", () => {
    assert.equal(deepEqual(3n, 3), true);
    assert.equal(deepEqual(3.5, 3n), false);
    assert.equal(deepEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
    assert.equal(deepEqual({ a: [1, { b: null }] }, { a: [1, { b: null }] }), true);
    assert.equal(deepEqual({ a: 1 }, { a: 1, b: 2 }), false);
  });
});

describe("telemetry readings", () => {
  test("SenML base name and base time carry over to later records and times are seconds", () => {
    const t0 = NOW / 1000 - 60;
    const { readings, skipped } = resolveSenml(
      [
        { bn: "urn:dev:ow:1/", bt: t0, n: "temp", u: "Cel", v: 23.5 },
        { n: "hum", v: 40, t: 10 },
        { n: "door", vb: true },
        { n: "nov" },
      ],
      policy,
    );
    assert.equal(skipped, 1);
    assert.deepEqual(readings, [
      { metric: "urn:dev:ow:1/temp", ts: NOW - 60_000, value: 23.5, unit: "Cel" },
      { metric: "urn:dev:ow:1/hum", ts: NOW - 50_000, value: 40 },
      { metric: "urn:dev:ow:1/door", ts: NOW - 60_000, value: true },
    ]);
  });

  test("SenML times below 2**28 are relative to now", () => {
    const { readings } = resolveSenml([{ n: "x", v: 1, t: -5 }], policy);
    assert.equal(readings[0].ts, NOW - 5000);
  });

  test("a device time outside the plausible window falls back to server time", () => {
    assert.equal(plausibleTime(NOW - 1000, policy), NOW - 1000);
    assert.equal(plausibleTime(12_345, policy), NOW, "uptime counter instead of a clock");
    assert.equal(plausibleTime(NOW + 3_600_000, policy), NOW, "clock far in the future");
    assert.equal(plausibleTime(undefined, policy), NOW);
  });

  test("nested reading maps are flattened with dots and nulls are skipped", () => {
    const result = readingsFromFrame({ ts: NOW - 10, r: { t: 1, gps: { lat: 1.5, lon: 2 }, gone: null } }, policy, 10);
    assert.ok(result.ok);
    assert.deepEqual(
      result.readings.map((r) => [r.metric, r.value, r.ts]),
      [
        ["t", 1, NOW - 10],
        ["gps.lat", 1.5, NOW - 10],
        ["gps.lon", 2, NOW - 10],
      ],
    );
    assert.equal(result.skipped, 1);
  });

  test("a frame with more readings than the limit is refused whole", () => {
    const result = readingsFromFrame({ r: { a: 1, b: 2, c: 3 } }, policy, 2);
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.code, "BRIDGE_ERR_TELEMETRY_TOO_MANY");
  });
});

describe("telemetry store", () => {
  test("retention deletes rows by age and beyond the row cap every N inserts", () => {
    const { sql, close } = memorySql();
    try {
      let now = NOW;
      const store = new TelemetryStore(sql, () => now, { maxAgeSeconds: 3600, maxRows: 5, everyRows: 4 });
      store.insert([{ metric: "old", ts: NOW - 7_200_000, value: 1 }]);
      store.insert([1, 2].map((i) => ({ metric: "m", ts: NOW + i, value: i })));
      assert.equal(store.count(), 3, "no retention before the 4th row");
      const result = store.insert([3, 4, 5, 6, 7].map((i) => ({ metric: "m", ts: NOW + i, value: i })));
      assert.ok(result.pruned > 0);
      assert.deepEqual(
        store.query({ order: "asc" }).map((r) => r.value),
        [3, 4, 5, 6, 7],
      );
      now += 10 * 3_600_000;
      assert.equal(store.enforceRetention(), 5);
    } finally {
      close();
    }
  });

  test("queries filter by metric and time window and return typed values", () => {
    const { sql, close } = memorySql();
    try {
      const store = new TelemetryStore(sql, () => NOW, { maxAgeSeconds: 3600, maxRows: 100, everyRows: 100 });
      store.insert([
        { metric: "t", ts: NOW - 3000, value: 20 },
        { metric: "t", ts: NOW - 2000, value: 21 },
        { metric: "s", ts: NOW - 2000, value: "ok" },
        { metric: "b", ts: NOW - 1000, value: false },
        { metric: "blob", ts: NOW - 1000, value: new Uint8Array([7]) },
        { metric: "arr", ts: NOW - 1000, value: [1, "x"] },
        { metric: "t", ts: NOW - 1000, value: 22, unit: "Cel" },
      ]);
      assert.deepEqual(store.query({ metric: "t", from: NOW - 2500, limit: 10 }), [
        { ts: NOW - 1000, metric: "t", value: 22, unit: "Cel" },
        { ts: NOW - 2000, metric: "t", value: 21 },
      ]);
      const values = Object.fromEntries(store.query({ from: NOW - 1500 }).map((r) => [r.metric, r.value]));
      assert.deepEqual(values, { t: 22, b: false, blob: new Uint8Array([7]), arr: [1, "x"] });
      assert.equal(store.query({ limit: 1 }).length, 1);
    } finally {
      close();
    }
  });
});

describe("shadow store and outbox", () => {
  test("reported patches need the current version and desired patches honour expectedVersion", () => {
    const { sql, close } = memorySql();
    try {
      const shadow = new ShadowStore(sql, () => NOW);
      assert.deepEqual(shadow.report(0, { t: 20 }), { status: "ok", version: 1, delta: {}, deltaChanged: false });
      assert.deepEqual(shadow.report(0, { t: 21 }), { status: "stale", version: 1 });
      assert.deepEqual(shadow.report(5, { t: 21 }), { status: "ahead", version: 1 }, "5 was never issued");
      const d = shadow.desire({ t: 22 }, 0);
      assert.deepEqual(d, { status: "ok", version: 1, delta: { t: 22 }, deltaChanged: true });
      assert.deepEqual(shadow.desire({ t: 23 }, 0), { status: "conflict", version: 1 });
      shadow.markDeltaSent({ t: 22 });
      assert.equal(shadow.report(1, { t: 22 }).status, "ok");
      assert.deepEqual(shadow.get().delta, {});
    } finally {
      close();
    }
  });

  test("the shadow's revision moves with every change of the reported or desired document, and at invalidate", () => {
    const { sql, close } = memorySql();
    try {
      const shadow = new ShadowStore(sql, () => NOW);
      const moved = (change: () => unknown): boolean => {
        const before = shadow.revision;
        change();
        return shadow.revision !== before;
      };
      assert.ok(moved(() => shadow.report(0, { t: 20 })));
      assert.ok(moved(() => shadow.desire({ t: 22 })));
      // Refused patches and the record of a sent delta change nothing the shadow shows.
      assert.ok(!moved(() => shadow.report(0, { t: 21 })));
      assert.ok(!moved(() => shadow.desire({ t: 23 }, 0)));
      assert.ok(!moved(() => shadow.markDeltaSent({ t: 22 })));
      assert.ok(!moved(() => shadow.get()));
      // After a rollback the same document version may come back with other content: the revision never does.
      assert.ok(moved(() => shadow.invalidate()));
    } finally {
      close();
    }
  });

  test("the outbox delivers in order, fails commands out of attempts and ignores a repeated ack", () => {
    const { sql, close } = memorySql();
    try {
      let now = NOW;
      const outbox = new CommandOutbox(sql, () => now);
      outbox.add({ id: "a", name: "x", args: null, ttlSeconds: 60, maxAttempts: 1 });
      outbox.add({ id: "b", name: "y", args: { n: 1 }, ttlSeconds: 60, maxAttempts: 3 });
      assert.deepEqual(
        outbox.takeDeliveries({ onlyQueued: false, sessions: ["s1"] }).deliver.map((d) => d.command.id),
        ["a", "b"],
      );
      // A reconnect: the next session gets the unacknowledged ones again.
      const again = outbox.takeDeliveries({ onlyQueued: false, sessions: ["s2"] });
      assert.deepEqual(
        again.deliver.map((d) => [d.command.id, d.to]),
        [["b", ["s2"]]],
      );
      assert.equal(again.finished[0].command.state, "FAILED");
      assert.equal(outbox.ack("b", true, 42, null).status, "applied");
      assert.equal(outbox.ack("b", false, null, "late").status, "duplicate");
      assert.equal(outbox.get("b")?.state, "SUCCEEDED");
      assert.equal(outbox.get("b")?.result, 42);
      outbox.add({ id: "c", name: "z", args: null, ttlSeconds: 1, maxAttempts: 3 });
      now += 2000;
      assert.equal(outbox.takeDeliveries({ onlyQueued: true, sessions: ["s2"] }).finished[0].command.state, "EXPIRED");
    } finally {
      close();
    }
  });

  test("the outbox sends a session each command once, even one out of attempts, and the next session again", () => {
    const { sql, close } = memorySql();
    try {
      const outbox = new CommandOutbox(sql, () => NOW);
      outbox.add({ id: "a", name: "x", args: null, ttlSeconds: 60, maxAttempts: 1 });
      // A new command goes to both sessions of a takeover: the old one (greeted) and the new one (not yet).
      const first = outbox.takeDeliveries({ onlyQueued: true, sessions: ["old", "new"] });
      assert.deepEqual(
        first.deliver.map((d) => [d.command.id, d.to]),
        [["a", ["old", "new"]]],
      );
      // The new session's greeting: it has the command already, so nothing goes and no attempt is spent.
      const greeting = outbox.takeDeliveries({ onlyQueued: false, sessions: ["new"], openSessions: ["new"] });
      assert.deepEqual([greeting.deliver, greeting.finished], [[], []]);
      assert.deepEqual([outbox.get("a")?.state, outbox.get("a")?.attempts], ["SENT", 1]);
      // Another session, later: out of attempts now.
      const next = outbox.takeDeliveries({ onlyQueued: false, sessions: ["third"] });
      assert.deepEqual(
        next.finished.map((f) => f.command.state),
        ["FAILED"],
      );
    } finally {
      close();
    }
  });

  test("the outbox remembers, per command, the open sessions that got it, and forgets closed ones", () => {
    const { sql, close } = memorySql();
    try {
      const outbox = new CommandOutbox(sql, () => NOW);
      outbox.add({ id: "a", name: "x", args: null, ttlSeconds: 60, maxAttempts: 5 });
      outbox.takeDeliveries({ onlyQueued: true, sessions: ["s1", "s2"] });
      // s3 opened after the command went out: its greeting delivers it; s2, still open and ungreeted, keeps its copy.
      const s3 = outbox.takeDeliveries({ onlyQueued: false, sessions: ["s3"], openSessions: ["s2", "s3"] });
      assert.deepEqual(
        s3.deliver.map((d) => d.to),
        [["s3"]],
      );
      assert.deepEqual(outbox.takeDeliveries({ onlyQueued: false, sessions: ["s2"] }).deliver, []);
      // s1 closed before the s3 delivery, so it is no longer remembered (a fresh session id would never match it).
      const row = sql<{ sent_sessions: Uint8Array }>`SELECT sent_sessions FROM commands WHERE id = 'a'`[0];
      assert.deepEqual(decodeValue(row.sent_sessions), ["s2", "s3"]);
    } finally {
      close();
    }
  });
});

describe("conversation guard and prompt", () => {
  test("an oversized text keeps head and tail and says how much was cut", () => {
    const text = "a".repeat(5000) + "b".repeat(5000);
    const out = compactText(text, 1000, "the tool output");
    assert.equal(out.compacted, true);
    assert.ok(out.text.length <= 1000);
    assert.match(out.text, /compacted: the tool output was 10000 characters; \d+ from the middle were cut/);
    assert.ok(out.text.startsWith("aaa") && out.text.endsWith("bbb"));
    assert.deepEqual(compactText("short", 1000, "x"), { text: "short", compacted: false });
  });

  test("a compacted text never splits a character outside the Basic Multilingual Plane", () => {
    // Emoji are two UTF-16 units: a cut between them leaves a lone surrogate, which SQLite stores as U+FFFD and an
    // engine's JSON parser (Python's) turns into a string its tokenizer refuses.
    for (let offset = 0; offset < 4; offset++) {
      const text = "x".repeat(offset) + "\u{1F525}".repeat(3000);
      const out = compactText(text, 1000, "the assistant message");
      assert.equal(out.compacted, true);
      assert.ok(out.text.length <= 1000);
      // Well-formed text survives UTF-8 (what SQLite stores) unchanged; a lone surrogate comes back as U+FFFD.
      assert.equal(Buffer.from(out.text, "utf8").toString("utf8"), out.text, `offset ${offset}`);
      const [head, tail] = out.text.split(/\n\[compacted: [^\]]*\]\n/);
      assert.ok(head.length > 0 && tail.length > 0);
    }
  });

  test("the prompt puts the system message first, history next and the volatile context after the question", () => {
    const entry = (id: number, turnId: string, role: "user" | "assistant", content: string) => ({
      id,
      turnId,
      role,
      content,
      compacted: false,
      createdAt: 0,
    });
    const messages = buildMessages({
      system: "SYS",
      history: [{ context: "CTX1", messages: [entry(1, "t1", "user", "q1"), entry(2, "t1", "assistant", "a1")] }],
      turn: { context: "CTX2", messages: [entry(3, "t2", "user", "q2")] },
    });
    assert.deepEqual(messages, [
      { role: "system", content: "SYS" },
      { role: "user", content: "q1\n\n---\nCTX1" },
      { role: "assistant", content: "a1" },
      { role: "user", content: "q2\n\n---\nCTX2" },
    ]);
  });

  test("a turn renders the same messages as the current turn and later as history, so the next prompt only appends", () => {
    const entry = (id: number, role: "user" | "assistant", content: string) => ({
      id,
      turnId: "t1",
      role,
      content,
      compacted: false,
      createdAt: 0,
    });
    const asked = buildMessages({
      system: "SYS",
      history: [],
      turn: { context: "CTX", messages: [entry(1, "user", "q1")] },
    });
    const next = buildMessages({
      system: "SYS",
      history: [{ context: "CTX", messages: [entry(1, "user", "q1"), entry(2, "assistant", "a1")] }],
      turn: { context: "CTX2", messages: [entry(3, "user", "q2")] },
    });
    assert.deepEqual(next.slice(0, asked.length), asked);
  });

  test("the device context lists readings of one instant on one line and says when it holds only newer readings", () => {
    const shadow = {
      reported: { version: 3, state: { mode: "eco" } },
      desired: { version: 1, state: {} },
      delta: {},
    };
    const t0 = Date.UTC(2026, 0, 1, 0, 0, 0);
    const rows = [
      { ts: t0 + 1000, metric: "temp", value: 21.5, unit: "Cel" },
      { ts: t0 + 1000, metric: "hum", value: 40 },
      { ts: t0, metric: "temp", value: 21 },
    ];
    const recent = deviceContext(t0 + 2000, true, shadowContext(shadow), rows);
    assert.equal(
      recent,
      [
        "Device context at 2026-01-01T00:00:02.000Z (online):",
        'Reported state (v3): {"mode":"eco"}',
        "Desired state (v1): {}",
        "Pending delta: {}",
        "Recent telemetry (newest first):",
        "- 2026-01-01T00:00:01.000Z temp=21.5 Cel, hum=40",
        "- 2026-01-01T00:00:00.000Z temp=21",
      ].join("\n"),
    );
    const since = deviceContext(t0 + 2000, false, shadowContext(shadow), [], true);
    assert.match(since, /\(offline\)/);
    assert.match(since, /Telemetry since the previous question: none$/);
  });
});

describe("reasoning turns", () => {
  const turnInput = (id: string) => ({
    id,
    requestId: `r-${id}`,
    connId: "c1",
    origin: "device" as const,
    question: "How warm is it?",
    context: "device: online",
    stream: true,
    maxTokens: 64,
  });

  test("turn ids come from memory after the first, and are read again after a rolled-back event", () => {
    const { sql, close } = memorySql();
    try {
      const turns = new TurnStore(sql, () => NOW);
      assert.equal(turns.nextId(), "turn-1");
      turns.create(turnInput("turn-1"), "task-1");
      assert.equal(turns.nextId(), "turn-2");
      // turn-2 was never written (its event rolled back): memory is ahead of the database until invalidated.
      assert.equal(turns.nextId(), "turn-3");
      turns.invalidate();
      assert.equal(turns.nextId(), "turn-2");
      // A store over the same database (the agent woken again) continues after what was written.
      assert.equal(new TurnStore(sql, () => NOW).nextId(), "turn-2");
    } finally {
      close();
    }
  });

  test("the open turns are read once, kept in step with every write, and read again after a rolled-back write", () => {
    const { sql, close } = memorySql();
    try {
      const { counted, statements } = recordingSql(sql);
      const turns = new TurnStore(counted, () => NOW);
      const state = () => ({
        one: turns.open.requestState("r-turn-1", "device", "c1"),
        two: turns.open.requestState("r-turn-2", "device", "c1"),
        running: turns.open.runningCount("device"),
      });
      turns.create(turnInput("turn-1"), "task-1");
      assert.deepEqual(state(), { one: "running", two: undefined, running: 1 });
      turns.create(turnInput("turn-2"), "task-2");
      assert.deepEqual(state(), { one: "running", two: "running", running: 2 });
      assert.deepEqual(turns.open.runningRequestIds(), ["r-turn-1", "r-turn-2"]);
      turns.setStatus("turn-1", "awaiting_approval");
      assert.deepEqual(state(), { one: "waiting", two: "running", running: 1 });
      assert.deepEqual(turns.queued(), []);
      turns.setStatus("turn-1", "queued");
      assert.deepEqual(state(), { one: "waiting", two: "running", running: 1 });
      assert.deepEqual(
        turns.queued().map((t) => t.id),
        ["turn-1"],
      );
      turns.finish("turn-2", "done", "stop");
      assert.deepEqual(state(), { one: "waiting", two: undefined, running: 0 });
      // Finishing a finished turn again, or a status for a turn that does not exist, opens nothing.
      turns.finish("turn-2", "failed", "error");
      turns.setStatus("turn-9", "queued");
      turns.startRound("turn-1", "task-3");
      assert.deepEqual(state(), { one: "running", two: undefined, running: 1 });
      assert.deepEqual(turns.queued(), []);
      const reads = () => statements.filter((t) => /status IN \('running', 'awaiting_approval', 'queued'\)/.test(t));
      assert.equal(reads().length, 1, "read once");
      assert.equal(
        statements.filter((t) => /COUNT\(\*\)|WHERE status = 'queued'/.test(t)).length,
        1,
        "the queue read once, the running turns never counted",
      );

      // A write that is rolled back after it was kept in memory: memory is ahead of the database until invalidated.
      sql`SAVEPOINT undone`;
      turns.finish("turn-1", "done", "stop");
      sql`ROLLBACK TO undone`;
      sql`RELEASE undone`;
      assert.deepEqual(state(), { one: undefined, two: undefined, running: 0 });
      turns.invalidate();
      assert.deepEqual(state(), { one: "running", two: undefined, running: 1 });
      assert.equal(reads().length, 2, "read again");
      // A store over the same database (the agent woken again) reads what was written.
      const woken = new TurnStore(sql, () => NOW);
      assert.equal(woken.open.requestState("r-turn-1", "device", "c1"), "running");
      assert.equal(woken.open.runningCount("device"), 1);
    } finally {
      close();
    }
  });

  test("the open turns answer per asker: the device's ids from any session, a viewer's per connection", () => {
    const { sql, close } = memorySql();
    try {
      const turns = new TurnStore(sql, () => NOW);
      const ofViewer = (id: string, connId: string) => ({
        ...turnInput(id),
        requestId: "1",
        origin: "viewer" as const,
        connId,
      });
      turns.create({ ...turnInput("turn-1"), requestId: "1" }, "task-1");
      turns.create(ofViewer("turn-2", "ws-a"), "task-2");
      turns.setStatus("turn-2", "awaiting_approval");
      const state = (store: TurnStore) => ({
        device: store.open.requestState("1", "device", "another-session"),
        viewerA: store.open.requestState("1", "viewer", "ws-a"),
        viewerB: store.open.requestState("1", "viewer", "ws-b"),
        running: [store.open.runningCount("device"), store.open.runningCount("viewer")],
      });
      const expected = { device: "running", viewerA: "waiting", viewerB: undefined, running: [1, 0] };
      assert.deepEqual(state(turns), expected);
      // Read back from the database (the agent woken again, or restarted) with the same askers.
      assert.deepEqual(state(new TurnStore(sql, () => NOW)), expected);
      // A viewer's turn that runs again holds a viewers' slot, not the device's.
      turns.startRound("turn-2", "task-3");
      assert.deepEqual(state(turns), { ...expected, viewerA: "running", running: [1, 1] });
      // An ended turn given an open status again is known by its row's asker.
      turns.finish("turn-2", "cancelled", "viewer-closed");
      turns.setStatus("turn-2", "queued");
      assert.deepEqual(state(turns), { ...expected, viewerA: "waiting" });
    } finally {
      close();
    }
  });

  test("the newest turn that ended done is read once and kept exact through ends, re-ends, pruning and rollbacks", () => {
    const { sql, close } = memorySql();
    try {
      const { counted, statements } = recordingSql(sql);
      let now = NOW;
      const turns = new TurnStore(counted, () => now);
      /** What the history window is based on, as the database says it: the newest done turn's finish order. */
      const stored = () =>
        Number(
          sql<{ n: number | null }>`SELECT MAX(finish_order) AS n FROM reason_turns WHERE status = 'done'`[0]?.n ?? 0,
        );
      const check = (what: string) => assert.equal(turns.newestDone(), stored(), what);
      const ask = (): string => {
        now += 1000;
        const id = turns.nextId();
        turns.create(turnInput(id), `task-${id}`);
        return id;
      };
      check("no turn");
      const first = ask();
      check("a running turn");
      turns.finish(first, "done", "stop");
      check("one done");
      const second = ask();
      turns.finish(second, "failed", "error");
      check("a failed turn after it");
      const third = ask();
      turns.finish(third, "done", "stop");
      check("a newer done");
      // Ended again, otherwise (not done by the reasoner, but the store keeps it exact).
      turns.finish(third, "cancelled", "cancelled");
      check("the newest done ended again as cancelled");
      turns.finish(third, "done", "stop");
      check("and done again");
      const reads = () => statements.filter((t) => /FROM reason_turns\s+WHERE \+status = 'done'/.test(t));
      // Known open, as in an agent (every question asks for its busy checks before its turn opens).
      turns.open.runningCount("device");
      const before = reads().length;
      const fourth = ask();
      turns.setStatus(fourth, "awaiting_approval");
      turns.setStatus(fourth, "queued");
      turns.startRound(fourth, "task-again");
      turns.finish(fourth, "done", "stop");
      check("a turn that waited, then ended done");
      // Asked before a turn that ends done first, it ends done last: the newest done one, though not the newest asked.
      const late = ask();
      turns.finish(ask(), "done", "stop");
      turns.finish(late, "done", "stop");
      check("a turn asked first, ended done last");
      assert.equal(reads().length, before, "an open turn's writes and a done end read nothing");
      // Newer failed turns push the done ones out: the newest done turn is pruned with them.
      for (let i = 0; i < 2; i++) turns.finish(ask(), "interrupted", "error");
      turns.prune(2);
      check("every done turn pruned");
      assert.equal(turns.newestDone(), 0);
      const fifth = ask();
      turns.finish(fifth, "done", "stop");
      check("a done turn after pruning");
      // A rolled-back end: memory is ahead of the database until invalidated.
      const sixth = ask();
      sql`SAVEPOINT undone`;
      turns.finish(sixth, "done", "stop");
      sql`ROLLBACK TO undone`;
      sql`RELEASE undone`;
      turns.invalidate();
      check("after a rolled-back end");
      assert.equal(new TurnStore(sql, () => now).newestDone(), stored(), "a store over the same database");
    } finally {
      close();
    }
  });

  test("a created turn runs its first round and is the stored row, served to the round without reading it", () => {
    const { sql, close } = memorySql();
    try {
      const turns = new TurnStore(sql, () => NOW);
      const created = turns.create({ ...turnInput("turn-1"), historyTurns: ["turn-0"] }, "task-1", 7);
      assert.equal(created.round, 1);
      assert.equal(created.taskId, "task-1");
      assert.equal(turns.current("turn-1", "task-1"), created);
      const stored = new TurnStore(sql, () => NOW).get("turn-1");
      // The row holds the seq reserved ahead of the chunks (a store without this one's memory numbers from there).
      assert.deepEqual(stored, { ...created, seq: SEQ_RESERVE });
      assert.deepEqual(turns.open.runningRequestIds(), ["r-turn-1"]);
    } finally {
      close();
    }
  });

  test("a turn keeps the system message its first round sent while it is open, and drops it when it ends", () => {
    const { sql, close } = memorySql();
    try {
      const turns = new TurnStore(sql, () => NOW);
      const systemMessage = "Be brief.\n\nDevice profile:\n- firmware: 1.0";
      turns.create({ ...turnInput("turn-1"), systemMessage }, "task-1");
      turns.setStatus("turn-1", "awaiting_approval");
      assert.equal(new TurnStore(sql, () => NOW).get("turn-1")?.systemMessage, systemMessage, "read back");
      assert.equal(turns.finish("turn-1", "done", "stop")?.systemMessage, undefined);
      const [row] = sql<{ system_message: string | null }>`SELECT system_message FROM reason_turns`;
      assert.equal(row.system_message, null, "no finished turn stores it");
    } finally {
      close();
    }
  });

  test("a streaming turn's stored seq stays ahead of every seq taken, one write per SEQ_RESERVE chunks", () => {
    const { sql, close } = memorySql();
    try {
      const turns = new TurnStore(sql, () => NOW);
      turns.create(turnInput("turn-1"), "task-1");
      const storedSeq = () => Number(sql<{ seq: number }>`SELECT seq FROM reason_turns WHERE id = 'turn-1'`[0].seq);
      const writes = () => Number(sql<{ n: number }>`SELECT total_changes() AS n`[0].n);
      const before = writes();
      for (let i = 0; i < SEQ_RESERVE; i++) assert.equal(turns.seqs.take("turn-1"), i);
      assert.equal(writes(), before, "the first SEQ_RESERVE chunks write nothing");
      assert.equal(storedSeq(), SEQ_RESERVE);
      assert.equal(turns.seqs.take("turn-1"), SEQ_RESERVE);
      assert.equal(storedSeq(), 2 * SEQ_RESERVE + 1, "reserved past the seq just taken");
      // A rolled-back event may have undone a reservation: the next seq taken writes one again.
      sql`SAVEPOINT undone`;
      for (let i = 0; i < 2 * SEQ_RESERVE; i++) turns.seqs.take("turn-1");
      sql`ROLLBACK TO undone`;
      sql`RELEASE undone`;
      turns.invalidate();
      const seq = turns.seqs.take("turn-1");
      assert.ok(storedSeq() > seq, `stored ${storedSeq()} after seq ${seq}`);
      // Memory lost mid-stream: the next frame is numbered past everything taken.
      assert.ok(new TurnStore(sql, () => NOW).seqs.peek("turn-1") > seq);
      // Ended, the row holds the exact next seq.
      const final = turns.seqs.takeFinal("turn-1");
      turns.finish("turn-1", "done", "stop");
      assert.equal(storedSeq(), final + 1);
    } finally {
      close();
    }
  });

  test("pruning keeps the newest finished turns, never a running one, and counts them once per store", () => {
    const { sql, close } = memorySql();
    try {
      const { counted, statements } = recordingSql(sql);
      let now = NOW;
      const turns = new TurnStore(counted, () => now);
      const ask = (finish: boolean): string => {
        now += 1000;
        const id = turns.nextId();
        turns.create(turnInput(id), `task-${id}`);
        if (finish) turns.finish(id, "done", "stop");
        return id;
      };
      const running = ask(false);
      for (let i = 0; i < 5; i++) ask(true);
      assert.equal(turns.prune(3), 2);
      const ids = () => sql<{ id: string }>`SELECT id FROM reason_turns ORDER BY created_at`.map((r) => r.id);
      assert.deepEqual(ids(), [running, "turn-4", "turn-5", "turn-6"]);
      ask(true);
      assert.equal(turns.prune(3), 1);
      assert.deepEqual(ids(), [running, "turn-5", "turn-6", "turn-7"]);
      assert.equal(turns.prune(3), 0, "nothing beyond keep");
      turns.finish("turn-7", "done", "stop");
      assert.equal(turns.prune(3), 0, "finishing a finished turn again counts it once");
      assert.equal(statements.filter((t) => t.includes("COUNT(*)")).length, 1, "counted once");
      turns.invalidate();
      assert.equal(turns.prune(2), 1, "counted again after a rollback");
      assert.deepEqual(ids(), [running, "turn-6", "turn-7"]);
    } finally {
      close();
    }
  });

  test("after the wall clock went back, pruning still deletes the oldest turns and keeps the one just finished", () => {
    const { sql, close } = memorySql();
    try {
      // A gateway that booted with its clock a year ahead, then corrected it (NTP): older turns carry later times.
      let now = NOW + 365 * 86_400_000;
      const turns = new TurnStore(sql, () => now);
      const ask = (): string => {
        now += 1000;
        const id = turns.nextId();
        turns.create(turnInput(id), `task-${id}`);
        turns.finish(id, "done", "stop");
        return id;
      };
      for (let i = 0; i < 3; i++) ask();
      now = NOW;
      const latest = ask();
      assert.equal(turns.prune(3), 1);
      const ids = sql<{ id: string }>`SELECT id FROM reason_turns ORDER BY rowid`.map((r) => r.id);
      assert.deepEqual(ids, ["turn-2", "turn-3", latest]);
    } finally {
      close();
    }
  });

  test("pruning keeps the turns that finished last: one asked first, finished last outlives later ones", () => {
    const { sql, close } = memorySql();
    try {
      const turns = new TurnStore(sql, () => NOW);
      const ask = (): string => {
        const id = turns.nextId();
        turns.create(turnInput(id), `task-${id}`);
        return id;
      };
      // Asked first, then waiting for an operator while three later questions are answered.
      const waited = ask();
      for (let i = 0; i < 3; i++) turns.finish(ask(), "done", "stop");
      turns.finish(waited, "done", "stop");
      assert.equal(turns.prune(3), 1);
      const ids = () => sql<{ id: string }>`SELECT id FROM reason_turns ORDER BY rowid`.map((r) => r.id);
      assert.deepEqual(ids(), [waited, "turn-3", "turn-4"], "the turn that finished first is the one pruned");
      turns.finish(ask(), "failed", "error");
      assert.equal(new TurnStore(sql, () => NOW).prune(3), 1, "a store without this one's memory");
      assert.deepEqual(ids(), [waited, "turn-4", "turn-5"]);
    } finally {
      close();
    }
  });

  test("schema migration 9 orders the turns finished before it by their last message, as the history does", () => {
    const db = new Database(":memory:");
    try {
      db.exec(DEVICE_SCHEMA_V3_DDL);
      const turn = db.prepare(`INSERT INTO reason_turns (id, request_id, conn_id, question, context, status, stream,
        max_tokens, created_at) VALUES (?, ?, 'c1', 'q', 'ctx', ?, 1, 64, ${NOW})`);
      const message = db.prepare(
        `INSERT INTO conversation (turn_id, role, content, created_at) VALUES (?, 'user', 'm', ${NOW})`,
      );
      // turn-1 was asked first and answered last (after an approval); turn-4 still waits.
      for (const [id, status] of [
        ["turn-1", "done"],
        ["turn-2", "done"],
        ["turn-3", "failed"],
        ["turn-4", "awaiting_approval"],
      ])
        turn.run(id, `r-${id}`, status);
      for (const id of ["turn-1", "turn-2", "turn-2", "turn-3", "turn-4", "turn-1"]) message.run(id);
      const sql = sqlTagOf(db);
      migrateDeviceSchema(sql);
      const turns = new TurnStore(sql, () => NOW);
      assert.equal(turns.prune(2), 1);
      const ids = () => sql<{ id: string }>`SELECT id FROM reason_turns ORDER BY rowid`.map((r) => r.id);
      assert.deepEqual(ids(), ["turn-1", "turn-3", "turn-4"]);
      // Turns finished after the migration come after every migrated one.
      turns.finish("turn-4", "done", "stop");
      assert.equal(turns.prune(2), 1);
      assert.deepEqual(ids(), ["turn-1", "turn-4"]);
    } finally {
      db.close();
    }
  });

  test("after the upgrade to finish_order the window drops no more of the last prompt's turns than a jump", () => {
    // Before migration 9 the window was placed by turn number, which counts every turn ever asked (pruned ones too);
    // finish_order counts the turns stored at the upgrade. So the window's steps fall elsewhere from then on: the
    // first prompt after the upgrade may carry fewer or more of the turns (one recompute of them, as at a step), but
    // always the newest quarter of the window, where a step keeps one turn of the last prompt besides the new one.
    for (const stored of [3, 10, 25]) {
      for (let last = stored; last < stored + 15; last++) {
        const db = new Database(":memory:");
        try {
          db.exec(DEVICE_SCHEMA_V3_DDL);
          const turn = db.prepare(`INSERT INTO reason_turns (id, request_id, conn_id, question, context, status,
            stream, max_tokens, created_at) VALUES (?, ?, 'c1', 'q', 'ctx', 'done', 1, 64, ${NOW})`);
          const message = db.prepare(
            `INSERT INTO conversation (turn_id, role, content, created_at) VALUES (?, ?, 'm', ${NOW})`,
          );
          const ids: string[] = [];
          for (let n = last - stored + 1; n <= last; n++) {
            ids.push(`turn-${n}`);
            turn.run(`turn-${n}`, `r-${n}`);
            message.run(`turn-${n}`, "user");
            message.run(`turn-${n}`, "assistant");
          }
          const sql = sqlTagOf(db);
          // What the last prompt before the upgrade carried: the turns numbered above the base of the newest one.
          const base = historyWindowBase(last, 8);
          const before = ids.filter((id) => Number(id.slice(5)) > base);
          migrateDeviceSchema(sql);
          const after = new ConversationStore(sql, () => NOW, 1000)
            .history(8, new TurnStore(sql, () => NOW).newestDone())
            .map((t) => t.turnId);
          const what = `${stored} turns stored, the newest turn-${last}: ${before} before, ${after} after`;
          assert.deepEqual(after, ids.slice(-after.length), `the newest turns, in order; ${what}`);
          assert.ok(after.length >= Math.min(2, before.length), `at least a quarter of the window; ${what}`);
        } finally {
          db.close();
        }
      }
    }
  });

  test("the history lists turns in the order they finished, even after the wall clock went back", () => {
    const { sql, close } = memorySql();
    try {
      let now = NOW + 365 * 86_400_000;
      const turns = new TurnStore(sql, () => now);
      const conversation = new ConversationStore(sql, () => now, 1000);
      const ask = (question: string): void => {
        now += 1000;
        const id = turns.nextId();
        turns.create(turnInput(id), `task-${id}`);
        conversation.append(id, { role: "user", content: question });
        conversation.append(id, { role: "assistant", content: `answer to ${question}` });
        turns.finish(id, "done", "stop");
      };
      ask("first");
      now = NOW;
      ask("second");
      assert.deepEqual(
        conversation.history(8).map((turn) => turn.messages[0].content),
        ["first", "second"],
      );
    } finally {
      close();
    }
  });

  test("a turn that finished late is in the next history, appended, though numbered below the window", () => {
    const { sql, close } = memorySql();
    try {
      const turns = new TurnStore(sql, () => NOW);
      const conversation = new ConversationStore(sql, () => NOW, 1000);
      const ask = (): string => {
        const id = turns.nextId();
        turns.create(turnInput(id), `task-${id}`);
        conversation.append(id, { role: "user", content: `question of ${id}` });
        return id;
      };
      const answer = (id: string): void => {
        conversation.append(id, { role: "assistant", content: `answer of ${id}` });
        turns.finish(id, "done", "stop");
      };
      const window = () => conversation.history(8, turns.newestDone()).map((turn) => turn.turnId);
      // turn-1 waits for an operator while turns 2 to 12 are answered.
      const waited = ask();
      for (let i = 0; i < 11; i++) answer(ask());
      const before = window();
      assert.deepEqual(before, ["turn-9", "turn-10", "turn-11", "turn-12"]);
      answer(waited);
      assert.deepEqual(window(), [...before, waited], "appended: the prompts before it stay its prefix");
      assert.deepEqual(
        conversation.history(8).map((turn) => turn.turnId),
        window(),
        "the same window when the store reads the newest done turn itself",
      );
      // It moves on with the window as the newest turns do, and pruning (the same order) keeps it as long.
      for (let i = 0; i < 3; i++) answer(ask());
      assert.deepEqual(window(), ["turn-9", "turn-10", "turn-11", "turn-12", waited, "turn-13", "turn-14", "turn-15"]);
      answer(ask());
      assert.deepEqual(window(), ["turn-15", "turn-16"], "the next step keeps a quarter of the window");
    } finally {
      close();
    }
  });

  test("the history window and its newest done turn are read along the finish_order index, with no sort", () => {
    const { sql, close } = memorySql();
    try {
      const run: Array<{ strings: TemplateStringsArray; values: SqlValue[] }> = [];
      const recorded = (<Row>(strings: TemplateStringsArray, ...values: SqlValue[]): Row[] => {
        run.push({ strings, values });
        return sql<Row>(strings, ...values);
      }) as SqlTag;
      new ConversationStore(recorded, () => NOW, 1000).history(8);
      const plans = run.map(({ strings, values }) => {
        const text = [`EXPLAIN QUERY PLAN ${strings[0]}`, ...strings.slice(1)];
        const explain = Object.assign(text, { raw: text });
        return sql<{ detail: string }>(explain, ...values)
          .map((row) => row.detail)
          .join("; ");
      });
      assert.equal(plans.length, 2, "the newest done turn, then the window");
      assert.match(plans[0], /^SCAN reason_turns USING INDEX reason_turns_finish_order$/);
      assert.match(plans[1], /SEARCH t USING INDEX reason_turns_finish_order \(finish_order>\?\)/);
      assert.match(plans[1], /SEARCH c USING INDEX conversation_turn \(turn_id=\?\)/);
      assert.doesNotMatch(plans[1], /TEMP B-TREE/);
    } finally {
      close();
    }
  });

  test("an appended message comes back as stored, compaction included", () => {
    const { sql, close } = memorySql();
    try {
      const conversation = new ConversationStore(sql, () => NOW, 40);
      const short = conversation.append("turn-1", { role: "user", content: "How warm is it?" });
      const long = conversation.append("turn-1", { role: "user", content: "x".repeat(200) });
      assert.equal(long.compacted, true);
      assert.deepEqual(conversation.turnMessages("turn-1"), [short, long]);
    } finally {
      close();
    }
  });
});

describe("history window", () => {
  test("the history window holds every turn up to its size, then jumps keeping a quarter of it and never exceeds it", () => {
    assert.equal(historyWindowBase(8, 8), 0);
    const bases = [9, 10, 15, 16, 22, 23].map((last) => historyWindowBase(last, 8));
    assert.deepEqual(bases, [7, 7, 7, 14, 14, 21]);
    for (let last = 1; last < 100; last++) {
      const base = historyWindowBase(last, 8);
      assert.ok(last - base <= 8 && last - base >= (last > 8 ? 2 : last));
    }
    for (const size of [1, 2, 3, 5]) {
      for (let last = 1; last < 40; last++) {
        const kept = last - historyWindowBase(last, size);
        assert.ok(kept >= 1 && kept <= size, `size ${size} last ${last} kept ${kept}`);
      }
    }
  });
});

describe("options", () => {
  test("options merge defaults, class overrides and config, and a bad field is named", () => {
    const o = resolveDeviceAgentOptions({ telemetryMaxRows: 10 }, { commandTtlSeconds: 5 });
    assert.equal(o.telemetryMaxRows, 10);
    assert.equal(o.commandTtlSeconds, 5);
    assert.deepEqual(o.toolsRequiringApproval, ["send_command", "set_desired"]);
    assert.throws(
      () => resolveDeviceAgentOptions({ telemetryMaxRows: 0 }),
      (err: unknown) =>
        err instanceof BridgeError && err.code === "BRIDGE_ERR_CONFIG" && err.details.field === "telemetryMaxRows",
    );
    assert.equal(o.maxHistoryChars, 12_000);
    assert.equal(resolveDeviceAgentOptions({ maxHistoryChars: 0 }).maxHistoryChars, 0);
    for (const bad of [-1, 1.5, "2000"]) {
      assert.throws(
        () => resolveDeviceAgentOptions({ maxHistoryChars: bad }),
        (err: unknown) =>
          err instanceof BridgeError && err.code === "BRIDGE_ERR_CONFIG" && err.details.field === "maxHistoryChars",
      );
    }
    // Viewers' slots are their own, one by default; a viewer must be able to run at all.
    assert.equal(o.maxConcurrentViewerTurns, 1);
    assert.throws(
      () => resolveDeviceAgentOptions({ maxConcurrentViewerTurns: 0 }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "maxConcurrentViewerTurns",
    );
    assert.equal(o.reasonChunkIntervalMs, 50);
    assert.equal(o.reasonBusyChunkIntervalMs, 100);
    assert.equal(resolveDeviceAgentOptions({ reasonChunkIntervalMs: 0 }).reasonChunkIntervalMs, 0);
    assert.throws(
      () => resolveDeviceAgentOptions({ reasonBusyChunkIntervalMs: -1 }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "reasonBusyChunkIntervalMs",
    );
    // Longer than a Node timer can wait (it would fire after 1 ms: chunks more often, not less): refused.
    assert.equal(
      resolveDeviceAgentOptions({ reasonChunkIntervalMs: 2_147_483_647 }).reasonChunkIntervalMs,
      2_147_483_647,
    );
    for (const field of ["reasonChunkIntervalMs", "reasonBusyChunkIntervalMs", "reasonTimeoutMs"]) {
      assert.throws(
        () => resolveDeviceAgentOptions({ [field]: 2_147_483_648 }),
        (err: unknown) => err instanceof BridgeError && err.code === "BRIDGE_ERR_CONFIG" && err.details.field === field,
      );
    }
    assert.throws(
      () => resolveDeviceAgentOptions({ telemetryMaxRow: 5 }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "telemetryMaxRow",
    );
  });

  test("a reasonMaxTokensLimit lowered below the default completion tokens is accepted: the unset default follows it", () => {
    assert.equal(resolveDeviceAgentOptions({ reasonMaxTokensLimit: 256 }).reasonDefaultMaxTokens, 256);
    // Set in a lower layer (the class's deviceOptions), lowered in a higher one (the bridge config).
    assert.equal(
      resolveDeviceAgentOptions({ reasonMaxTokensLimit: 2048 }, { reasonMaxTokensLimit: 128 }).reasonDefaultMaxTokens,
      128,
    );
    assert.equal(resolveDeviceAgentOptions({ reasonMaxTokensLimit: 1024 }).reasonDefaultMaxTokens, 512);
    // Set explicitly above the limit, it is still refused; a bad limit is named as the bad field.
    assert.throws(
      () => resolveDeviceAgentOptions({ reasonMaxTokensLimit: 256, reasonDefaultMaxTokens: 512 }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "reasonDefaultMaxTokens",
    );
    assert.throws(
      () => resolveDeviceAgentOptions({ reasonMaxTokensLimit: 0 }),
      (err: unknown) => err instanceof BridgeError && err.details.field === "reasonMaxTokensLimit",
    );
  });
});
