/**
 * Tables of the DeviceAgent, created by idempotent, numbered migrations in `onStart`. The applied version is kept in
 * `device_schema` (not `PRAGMA user_version`, which belongs to the runtime), so a subclass or the runtime may add
 * their own tables without clashing.
 */
import { refuseNewerSchema } from "../../errors/newer-schema.ts";
import { AGENT_ERRORS } from "../errors.ts";
import type { SqlTag } from "./sql.ts";
import { migrateTelemetryRows } from "./telemetry-migration.ts";

type Migration = (sql: SqlTag) => void;

const MIGRATIONS: readonly Migration[] = [
  // 1: shadow, presence, commands. It also created the row-per-reading `telemetry` table, until migration 4 replaced
  // it: a new database skips it (migration 4 converts it where an older version created it).
  (sql) => {
    sql`CREATE TABLE IF NOT EXISTS shadow (
      doc TEXT PRIMARY KEY,
      version INTEGER NOT NULL,
      state BLOB NOT NULL,
      updated_at INTEGER NOT NULL
    )`;
    sql`CREATE TABLE IF NOT EXISTS device_meta (key TEXT PRIMARY KEY, value BLOB)`;
    sql`CREATE TABLE IF NOT EXISTS commands (
      id TEXT PRIMARY KEY,
      seq INTEGER NOT NULL UNIQUE,
      name TEXT NOT NULL,
      args BLOB,
      state TEXT NOT NULL,
      attempts INTEGER NOT NULL,
      max_attempts INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      sent_at INTEGER,
      done_at INTEGER,
      result BLOB,
      error TEXT,
      schedule_id TEXT
    )`;
    sql`CREATE INDEX IF NOT EXISTS commands_state_seq ON commands (state, seq)`;
  },
  // 2: reasoning: turns, conversation, approvals, usage.
  (sql) => {
    sql`CREATE TABLE IF NOT EXISTS reason_turns (
      id TEXT PRIMARY KEY,
      request_id TEXT NOT NULL,
      conn_id TEXT NOT NULL,
      question TEXT NOT NULL,
      context TEXT NOT NULL,
      status TEXT NOT NULL,
      stream INTEGER NOT NULL,
      max_tokens INTEGER NOT NULL,
      round INTEGER NOT NULL DEFAULT 0,
      seq INTEGER NOT NULL DEFAULT 0,
      text TEXT NOT NULL DEFAULT '',
      task_id TEXT,
      prompt_tokens INTEGER NOT NULL DEFAULT 0,
      cached_tokens INTEGER NOT NULL DEFAULT 0,
      completion_tokens INTEGER NOT NULL DEFAULT 0,
      finish_reason TEXT,
      created_at INTEGER NOT NULL,
      finished_at INTEGER
    )`;
    sql`CREATE INDEX IF NOT EXISTS reason_turns_status ON reason_turns (status)`;
    sql`CREATE TABLE IF NOT EXISTS conversation (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      turn_id TEXT NOT NULL,
      role TEXT NOT NULL,
      content TEXT,
      tool_calls TEXT,
      tool_call_id TEXT,
      compacted INTEGER NOT NULL DEFAULT 0,
      created_at INTEGER NOT NULL
    )`;
    sql`CREATE INDEX IF NOT EXISTS conversation_turn ON conversation (turn_id, id)`;
    sql`CREATE TABLE IF NOT EXISTS approvals (
      id TEXT PRIMARY KEY,
      turn_id TEXT NOT NULL,
      tool_call_id TEXT NOT NULL,
      tool TEXT NOT NULL,
      args TEXT NOT NULL,
      status TEXT NOT NULL,
      reason TEXT,
      created_at INTEGER NOT NULL,
      resolved_at INTEGER,
      schedule_id TEXT
    )`;
    sql`CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status)`;
    sql`CREATE TABLE IF NOT EXISTS reason_usage (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      requests INTEGER NOT NULL,
      prompt_tokens INTEGER NOT NULL,
      cached_tokens INTEGER NOT NULL,
      completion_tokens INTEGER NOT NULL
    )`;
    sql`INSERT OR IGNORE INTO reason_usage (id, requests, prompt_tokens, cached_tokens, completion_tokens) VALUES (1, 0, 0, 0, 0)`;
  },
  // 3: the newest telemetry row id a turn's context snapshot saw, so the next turn lists only rows stored after it.
  (sql) => {
    sql`ALTER TABLE reason_turns ADD COLUMN telemetry_mark INTEGER`;
  },
  // 4: telemetry one row per frame (issue #6): telemetry_rows, telemetry_shapes, telemetry_shape_metrics; the rows of
  // the schema-1 `telemetry` table are copied with their ids, then it is dropped.
  migrateTelemetryRows,
  // 5: turns by age, so pruning the oldest finished turns walks from the oldest instead of sorting them all.
  (sql) => {
    sql`CREATE INDEX IF NOT EXISTS reason_turns_created ON reason_turns (created_at)`;
  },
  // 6: turns asked without history after the engine refused their prompt as too long for its context window; the
  // history of later turns starts at the newest of them (reasoner.ts).
  (sql) => {
    sql`ALTER TABLE reason_turns ADD COLUMN without_history INTEGER NOT NULL DEFAULT 0`;
  },
  // 7: the device sessions a command was delivered to, so a session gets each command once (command-outbox.ts).
  (sql) => {
    sql`ALTER TABLE commands ADD COLUMN sent_sessions BLOB`;
  },
  // 8: who asked a turn: the device, or a WebSocket viewer whose turns answer only it and end with it
  // (viewer-turns.ts). Turns stored before it count as the device's.
  (sql) => {
    sql`ALTER TABLE reason_turns ADD COLUMN origin TEXT NOT NULL DEFAULT 'device'`;
  },
  // 9: the order turns finished in, so pruning deletes the turns that finished first: a turn asked early that waited
  // long for an operator is the newest finished when it ends, not the oldest asked (turn-store.ts). Turns finished
  // before it are ordered as the history orders them, by their last message.
  (sql) => {
    sql`ALTER TABLE reason_turns ADD COLUMN finish_order INTEGER`;
    sql`UPDATE reason_turns SET finish_order = ordered.n FROM (
        SELECT t.id, ROW_NUMBER() OVER (
          ORDER BY (SELECT MAX(c.id) FROM conversation c WHERE c.turn_id = t.id), t.rowid) AS n
        FROM reason_turns t WHERE t.status IN ('done', 'failed', 'cancelled', 'interrupted')) AS ordered
      WHERE reason_turns.id = ordered.id`;
    sql`CREATE INDEX IF NOT EXISTS reason_turns_finish_order ON reason_turns (finish_order)`;
  },
  // 10: the finished turns a turn's first round carried as history (a JSON array of turn ids, in prompt order), so
  // its later rounds replay the same history, after an approval and across a restart too (prompt-history.ts). Turns
  // stored before it have none, and their later rounds read the history as before.
  (sql) => {
    sql`ALTER TABLE reason_turns ADD COLUMN history_turns TEXT`;
  },
  // 11: the system message (system prompt and device profile) a turn's first round sent, so its later rounds send the
  // same one after a hello changed the profile, after an approval and across a restart too (prompt-system.ts). Kept
  // while the turn is open only. Turns stored before it have none, and their later rounds render the current one.
  (sql) => {
    sql`ALTER TABLE reason_turns ADD COLUMN system_message TEXT`;
  },
  // 12: the open commands in seq order, so the delivery window (the oldest open commands, command-outbox.ts) is read
  // without walking the finished ones kept as history.
  (sql) => {
    sql`CREATE INDEX IF NOT EXISTS commands_open_seq ON commands (seq) WHERE state IN ('QUEUED', 'SENT')`;
  },
  // 13: each command's ack timeout, ms (0: none), and the alarm of its latest delivery's (ack-timeout.ts). A command
  // stored before it has none of its own and follows the class's commandAckTimeoutMs; one already SENT gets its alarm
  // at its next delivery.
  (sql) => {
    sql`ALTER TABLE commands ADD COLUMN ack_timeout_ms INTEGER`;
    sql`ALTER TABLE commands ADD COLUMN ack_schedule_id TEXT`;
  },
];

/** The schema version this code writes. */
export const DEVICE_SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the agent's database to `DEVICE_SCHEMA_VERSION`. Safe to run on every start. */
export function migrateDeviceSchema(sql: SqlTag): number {
  sql`CREATE TABLE IF NOT EXISTS device_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`;
  let version = storedVersion(sql);
  while (version < MIGRATIONS.length) {
    MIGRATIONS[version](sql);
    version += 1;
    sql`INSERT INTO device_schema (id, version) VALUES (1, ${version}) ON CONFLICT (id) DO UPDATE SET version = excluded.version`;
  }
  return version;
}

/**
 * Refuses DeviceAgent tables a newer build migrated (the bridge was rolled back): this build would run its older code
 * on tables and rows of a shape it does not know. Called as the agent is constructed, so the wake fails (its events
 * fail with BRIDGE_ERR_STORAGE and the agent stays asleep, as for an agent database whose runtime tables are newer,
 * agents/storage.ts) before any of its code touches them, and they stay as the newer build left them.
 */
export function refuseNewerDeviceTables(sql: SqlTag): void {
  const table = sql<{ n: number }>`SELECT count(*) AS n FROM sqlite_master
    WHERE type = 'table' AND name = 'device_schema'`;
  if (table.length === 0 || Number(table[0].n) === 0) return;
  const subject = "cannot open the device agent's tables";
  refuseNewerSchema(AGENT_ERRORS.STORAGE, subject, storedVersion(sql), MIGRATIONS.length);
}

/** The migrations `device_schema` says were applied: 0 before the first. */
function storedVersion(sql: SqlTag): number {
  const rows = sql<{ version: number }>`SELECT version FROM device_schema WHERE id = 1`;
  return rows.length > 0 ? Number(rows[0].version) : 0;
}
