import type { SqlRunner } from "./sql-runner.ts";

/**
 * State is stored as CBOR split into rows of at most STATE_CHUNK_BYTES, so a large state never meets SQLite's
 * row-size limit (SQLITE_MAX_LENGTH, 1e9 bytes in this build) and a small one stays one row. The only bound left
 * is the database cap, which fails the write with BRIDGE_ERR_STORAGE_FULL.
 */
export const STATE_CHUNK_BYTES = 512 * 1024;

/** Writes the encoded state; returns how many chunks it now takes. `previousChunks` avoids a DELETE when unchanged. */
export function writeStateChunks(sql: SqlRunner, bytes: Uint8Array, previousChunks: number): number {
  const chunks = Math.max(1, Math.ceil(bytes.length / STATE_CHUNK_BYTES));
  for (let i = 0; i < chunks; i++) {
    const part = chunks === 1 ? bytes : bytes.subarray(i * STATE_CHUNK_BYTES, (i + 1) * STATE_CHUNK_BYTES);
    sql.run("INSERT OR REPLACE INTO _bridge_state (chunk, data) VALUES (?, ?)", i, part);
  }
  if (previousChunks > chunks) sql.run("DELETE FROM _bridge_state WHERE chunk >= ?", chunks);
  return chunks;
}

/** Reads the stored state bytes and their chunk count; `null` when no state was ever written. */
export function readStateChunks(sql: SqlRunner): { bytes: Uint8Array; chunks: number } | null {
  const rows = sql.all<{ data: Uint8Array }>("SELECT data FROM _bridge_state ORDER BY chunk");
  if (rows.length === 0) return null;
  if (rows.length === 1) return { bytes: rows[0].data, chunks: 1 };
  return { bytes: Buffer.concat(rows.map((r) => r.data)), chunks: rows.length };
}
