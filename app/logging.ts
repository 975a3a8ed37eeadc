/**
 * Structured logs (pino JSON lines on stdout). Secrets are censored by key name at any depth as a second line of
 * defence: the bridge never logs the config's secrets on purpose, and this catches a secret that reaches a log line
 * by accident (a headers object, a config or engine options object, a property of an error), in each of the three
 * places pino takes one from: the log object, a child logger's bindings and the values a message interpolates.
 */
import { type Bindings, type ChildLoggerOptions, type DestinationStream, type LogFn, type Logger, pino } from "pino";
import { redactInterpolatedValue, redactSecrets } from "./log-redaction.ts";

export interface LoggerOptions {
  /** pino level name. Default "info". */
  level?: string;
  /** Where lines go. Default: stdout, written synchronously so a crash or a kill loses no line. */
  destination?: DestinationStream;
  /** Fixed fields on every line. Default: { service: "agent-bridge" }. */
  base?: Record<string, unknown>;
}

/** Creates the bridge's root logger; components take children (`logger.child({ component: "broker" })`). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: true });
  const logger = pino(
    {
      level: options.level ?? "info",
      base: options.base ?? { service: "agent-bridge" },
      // Every logged object, in every child logger (they inherit the formatter); `bindings` sees the base only.
      formatters: { log: redactSecrets, bindings: redactSecrets },
      hooks: { logMethod: censorMessageArguments },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
  censorChildBindings(logger);
  return logger;
}

/**
 * pino runs `formatters.bindings` on the base bindings only, never on a child's (pinojs/pino#1700), and has no hook
 * that sees a child's bindings before it prints them into every line. So the root's `child` and `setBindings` censor
 * them first; each child is created from its parent by prototype, so every descendant inherits both.
 */
function censorChildBindings(root: Logger): void {
  const createChild = root.child;
  const setBindings = root.setBindings;
  root.child = function childWithCensoredBindings<ChildLevels extends string = never>(
    this: Logger,
    bindings: Bindings,
    childOptions?: ChildLoggerOptions<ChildLevels>,
  ): Logger<ChildLevels> {
    const createTyped: (this: Logger, ...args: [Bindings, ChildLoggerOptions<ChildLevels>?]) => Logger<ChildLevels> =
      createChild;
    return createTyped.call(this, redactSecrets(bindings), childOptions);
  };
  root.setBindings = function setCensoredBindings(this: Logger, bindings: Bindings): void {
    setBindings.call(this, redactSecrets(bindings));
  };
}

/**
 * pino's `hooks.logMethod`, inherited by every child: the arguments after the first (the message and the values of
 * its `%s`, `%j`, `%o` and `%O`) are printed with `String()` or JSON outside `formatters.log`, so they are censored
 * here. The first is the log object, which `formatters.log` walks, or a string message. A line with no object among
 * them (the usual `log.info({ ... }, "text")`) is passed on as it came.
 */
function censorMessageArguments(this: Logger, args: Parameters<LogFn>, log: LogFn): void {
  let censored: unknown[] | undefined;
  for (let index = 1; index < args.length; index++) {
    const value: unknown = args[index];
    if (value === null || typeof value !== "object") continue;
    const redacted = redactInterpolatedValue(value);
    if (redacted !== value) {
      censored ??= [...args];
      censored[index] = redacted;
    }
  }
  log.apply(this, (censored ?? args) as Parameters<LogFn>);
}
