/**
 * Structured logs (pino JSON lines on stdout). Secrets are redacted by path as a second line of defence: the bridge
 * never logs the config's secrets on purpose, and redaction catches a secret that reaches a log object by accident.
 */
import { type DestinationStream, type Logger, pino } from "pino";

/** Paths pino replaces with "[redacted]" wherever they appear in a logged object. */
export const REDACTED_LOG_PATHS: readonly string[] = [
  "apiKey",
  "apiToken",
  "secret",
  "password",
  "authorization",
  "*.apiKey",
  "*.apiToken",
  "*.secret",
  "*.password",
  "*.authorization",
  "config.http.apiToken",
  "config.engine.apiKey",
  "req.headers.authorization",
];

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
      redact: { paths: [...REDACTED_LOG_PATHS], censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
