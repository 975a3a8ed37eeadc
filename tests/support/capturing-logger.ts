/**
 * The one capturing logger of the test suites: a real pino logger whose lines land in an array the test reads, so a
 * test asserts on what the code under test logged (its level, message and fields) without a stream or a file.
 *
 * The logger is pino's own `Logger`, so it fits wherever the bridge takes one (the runtime, the bridge, an agent) and
 * where Fastify takes a `FastifyBaseLogger` (`loggerInstance`). pino writes each line synchronously to the destination,
 * so a line is in `lines` as soon as the call that logs it returns.
 *
 * @example
 * const { logger, lines } = capturingLogger("warn");
 * const rt = testRuntime(dataDir, Plain, 1, { logger });
 * assert.equal(lines.filter((l) => l.level === 40).length, 1);
 */
import { type Level, type Logger, pino } from "pino";

/** A logger and the lines it wrote, oldest first. */
export interface CapturedLog<T> {
  logger: Logger;
  lines: T[];
}

/** What a test may ask of a capturing logger besides its level. */
export interface CapturingLoggerOptions<T> {
  /** Called with each line once it is in `lines`: for a test that waits for one line to be logged. Default: none. */
  onLine?: (line: T) => void;
}

/**
 * A logger at `level` whose lines are parsed from pino's JSON into `lines`. `T` is the shape the test reads; pino does
 * not check it, so name only fields the code under test writes.
 */
export function capturingLogger<T = Record<string, unknown>>(
  level: Level,
  options: CapturingLoggerOptions<T> = {},
): CapturedLog<T> {
  const lines: T[] = [];
  const logger = pino(
    { level },
    {
      write(text: string) {
        const line = JSON.parse(text) as T;
        lines.push(line);
        options.onLine?.(line);
      },
    },
  );
  return { logger, lines };
}

/**
 * A logger at `level` whose lines are kept as pino wrote them (one JSON object and its newline each): for a test about
 * the text itself, such as a key written twice, which parsing would fold into one.
 */
export function capturingRawLogger(level: Level): CapturedLog<string> {
  const lines: string[] = [];
  const logger = pino(
    { level },
    {
      write(text: string) {
        lines.push(text);
      },
    },
  );
  return { logger, lines };
}
