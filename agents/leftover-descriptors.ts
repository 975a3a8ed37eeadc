/**
 * Descriptors of agent database files that a deferred close (deferred-close.ts) finished with while a background
 * fsync of them was still queued on libuv's thread pool: a wake or a destroy finished the close on the spot.
 *
 * Such a descriptor cannot be closed with the others. Its number would be free while the fsync waits for a thread,
 * and the next open takes the lowest free number: the fsync would then run on another file's descriptor (another
 * agent's database, runtime.db) and take the report of a failed writeback meant for it (Linux tells one once per
 * open file description), so that file's own next fsync would succeed on data that never reached the disk. Once the
 * fsync returned, closing it is still wrong while a SQLite handle of the same file is open, as after a wake: closing
 * any descriptor of a file drops every POSIX lock the process holds on it, that handle's EXCLUSIVE lock among them.
 * So each waits for both: its fsync's return, and a moment no handle of its file is open (the file's next close, a
 * destroy, a shutdown).
 */

interface FileLeftovers {
  /** A SQLite handle of the file may be open (a wake opened it after its close finished). */
  handleOpen: boolean;
  /** Descriptors whose fsync has not returned yet. */
  readonly syncing: Set<number>;
  /** Descriptors whose fsync returned, waiting for no handle of the file to be open. */
  readonly returned: number[];
}

export class LeftoverDescriptors {
  readonly #files = new Map<string, FileLeftovers>();
  readonly #close: (fd: number) => void;

  /** `close` closes a descriptor and never throws. */
  constructor(close: (fd: number) => void) {
    this.#close = close;
  }

  /** Files with descriptors still open. */
  get files(): string[] {
    return [...this.#files.keys()];
  }

  /** `fd`, a descriptor of `file` whose fsync is still queued; no handle of the file is open now. */
  add(file: string, fd: number): void {
    const left = this.#files.get(file) ?? { handleOpen: false, syncing: new Set<number>(), returned: [] };
    left.syncing.add(fd);
    this.#files.set(file, left);
  }

  /** The fsync of `fd` returned: closed now, unless a handle of `file` is open. */
  fsyncReturned(file: string, fd: number): void {
    const left = this.#files.get(file);
    if (left === undefined || !left.syncing.delete(fd)) return;
    left.returned.push(fd);
    if (!left.handleOpen) this.#closeReturned(file, left);
  }

  /** A SQLite handle of `file` is about to be opened (a wake): what is left of the file waits for it to close. */
  handleOpening(file: string): void {
    const left = this.#files.get(file);
    if (left !== undefined) left.handleOpen = true;
  }

  /** No SQLite handle of `file` is open: closes what is left of the file whose fsync returned. */
  handleClosed(file: string): void {
    const left = this.#files.get(file);
    if (left === undefined) return;
    left.handleOpen = false;
    this.#closeReturned(file, left);
  }

  #closeReturned(file: string, left: FileLeftovers): void {
    for (const fd of left.returned.splice(0)) this.#close(fd);
    if (left.syncing.size === 0) this.#files.delete(file);
  }
}
