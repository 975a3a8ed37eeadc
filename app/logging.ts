/**
 * Structured logs (pino JSON lines on stdout). Secrets are censored by key name at any depth as a second line of
 * defence: the bridge never logs the config's secrets on purpose, and this catches a secret that reaches a log object
 * by accident (a headers object, a config or engine options object, a property of an error).
 */
import { type DestinationStream, type LogFn, type Logger, pino } from "pino";
import { redactSecrets, redactSecretsInValue } from "./log-redaction.ts";

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
  return pino(
    {
      level: options.level ?? "info",
      base: options.base ?? { service: "agent-bridge" },
      // Every logged object, in every child logger (they inherit the formatter). A child's own bindings are not
      // walked: pino gives no hook for them, and the bridge binds only ids (`component`, `agent`).
      formatters: { log: redactSecrets },
      hooks: { logMethod: censorMessageArguments },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/**
 * pino's `hooks.logMethod`, inherited by every child: the arguments after the first (the message and the values of
 * its `%j`, `%o` and `%O`) are printed with JSON outside `formatters.log`, so they are censored here. The first is
 * the log object, which `formatters.log` walks, or a string message. A line with no object among them (the usual
 * `log.info({ ... }, "text")`) is passed on as it came.
 */
function censorMessageArguments(this: Logger, args: Parameters<LogFn>, log: LogFn): void {
  let censored: unknown[] | undefined;
  for (let index = 1; index < args.length; index++) {
    const value: unknown = args[index];
    if (value === null || typeof value !== "object") continue;
    const redacted = redactSecretsInValue(value);
    if (redacted !== value) {
      censored ??= [...args];
      censored[index] = redacted;
    }
  }
  log.apply(this, (censored ?? args) as Parameters<LogFn>);
}
