/**
 * Makes a snapshot's files private and durable before it is renamed into place: every directory 0700 and every file
 * 0600 (SQLite creates its copies with the umask's mode), each file and directory fsynced, so the rename never
 * publishes a snapshot whose contents a power loss could still take back. The fsyncs run on libuv's thread pool, a
 * few at a time: one after the other on the event loop, ten thousand agents' files would stop devices for seconds.
 */
import fs from "node:fs";
import path from "node:path";

/** Files synced at once. */
const SYNC_CONCURRENCY = 4;

/** Chmods and fsyncs everything under `dir`; returns the total size of its files. */
export async function syncTree(dir: string): Promise<number> {
  const files: string[] = [];
  const dirs: string[] = [];
  collect(dir, files, dirs);
  let total = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++];
      await fs.promises.chmod(file, 0o600);
      const handle = await fs.promises.open(file, "r");
      try {
        await handle.sync();
        // Read before the sum: `total += await ...` would add to the total as it was before the await, losing the
        // other workers' sizes added meanwhile.
        const { size } = await handle.stat();
        total += size;
      } finally {
        await handle.close();
      }
    }
  };
  await Promise.all(Array.from({ length: SYNC_CONCURRENCY }, worker));
  // Deepest first, so a directory is synced after the entries made in it.
  for (const d of dirs.reverse()) await fsyncDir(d);
  return total;
}

function collect(dir: string, files: string[], dirs: string[]): void {
  fs.chmodSync(dir, 0o700);
  dirs.push(dir);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) collect(p, files, dirs);
    else files.push(p);
  }
}

/** Fsyncs a directory, so the names made in it (a file, a rename) survive a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
