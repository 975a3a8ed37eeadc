/**
 * What `createBridge` has opened so far (the registry's SQLite handle, the engine client, the agent runtime and its
 * exclusive `runtime.db`, the broker, the sockets, the HTTP server). When a later build step throws (a setting the
 * engine client refuses, an unreadable API token file, ...), they are closed in reverse order before the error
 * reaches the caller: an embedder that catches it and builds again on the same data directory must not find it held.
 */
import type { Logger } from "pino";

interface OpenedPart {
  name: string;
  close: () => unknown;
}

export class OpenedParts {
  readonly #parts: OpenedPart[] = [];

  /** Records `part` as opened and returns it; `close` undoes it if the build fails later. */
  add<T>(name: string, part: T, close: (part: T) => unknown): T {
    this.#parts.push({ name, close: () => close(part) });
    return part;
  }

  /**
   * Closes every recorded part, the last opened first. A part that fails to close is logged and the others still
   * close: the caller is already reporting the error that made the build fail.
   */
  async closeAll(logger: Logger): Promise<void> {
    while (this.#parts.length > 0) {
      const part = this.#parts.pop() as OpenedPart;
      try {
        await part.close();
      } catch (err) {
        logger.error({ err, step: part.name }, "error while closing a bridge that could not be built");
      }
    }
  }
}
