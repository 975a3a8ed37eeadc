/** Device stores on a bare SQLite, for tests that drive one store without an agent around it. */
import Database from "better-sqlite3";
import { migrateDeviceSchema } from "../../agents/device/schema.ts";
import type { SqlTag, SqlValue } from "../../agents/device/sql.ts";

/** A `sql` tag over `db`, binding booleans as SQLite does not (as 1 and 0). */
export function sqlTagOf(db: Database.Database): SqlTag {
  return (<Row>(strings: TemplateStringsArray, ...values: SqlValue[]): Row[] => {
    const stmt = db.prepare(strings.join("?"));
    const params = values.map((v) => (typeof v === "boolean" ? (v ? 1 : 0) : v));
    if (stmt.reader) return stmt.all(...params) as Row[];
    stmt.run(...params);
    return [];
  }) as SqlTag;
}

/** A migrated device database in memory. */
export function memorySql(): { sql: SqlTag; db: Database.Database; close(): void } {
  const db = new Database(":memory:");
  const sql = sqlTagOf(db);
  migrateDeviceSchema(sql);
  return { sql, db, close: () => db.close() };
}

/** `sql`, recording the text of every statement run through it: for tests that a store reads only what it must. */
export function recordingSql(sql: SqlTag): { counted: SqlTag; statements: string[] } {
  const statements: string[] = [];
  const counted = (<Row>(strings: TemplateStringsArray, ...values: SqlValue[]): Row[] => {
    statements.push(strings.join("?"));
    return sql<Row>(strings, ...values);
  }) as SqlTag;
  return { counted, statements };
}
