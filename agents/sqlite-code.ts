/** The SQLite result code better-sqlite3 puts on an error it throws (`SQLITE_BUSY`, ...), or undefined for another. */
export function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_") ? code : undefined;
}
