/**
 * Structured logs (pino JSON lines on stdout). Secrets are censored by key name at any depth as a second line of
 * defence: the bridge never logs the config's secrets on purpose, and this catches a secret that reaches a log object
 * by accident (a headers object, a config or engine options object, a property of an error).
 */
import { type DestinationStream, type Logger, pino } from "pino";
import { redactSecrets } from "./log-redaction.ts";

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
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
