/**
 * A refused option named by the command-line flag the user typed. The simulators' option checks name a field by its
 * path in the options object (`engineSim.port`, `offlineBufferSize`), which appears nowhere on a command line; their
 * CLIs map it back to the flag through commander's own option list (each option's attribute name and long flag), so
 * no second list of flags has to be kept in step with the command's definition.
 */
import { BridgeError } from "./bridge-error.ts";

/** What is read of a commander `Command` (structural, so this module needs no commander import). */
export interface FlagSource {
  readonly options: readonly { readonly long?: string; attributeName(): string }[];
  getOptionValue(key: string): unknown;
}

/** How a command's options name their fields. */
export interface FlagNaming {
  /** The code of a refused option, whose `details.field` names it. */
  code: string;
  /** The path prefix of every field (`engineSim.`); none when the fields are top-level names. */
  fieldPrefix?: string;
  /** Fields named otherwise than their flag's attribute (`offlineBufferSize` set by `--buffer`): field to attribute. */
  attributeOf?: Readonly<Record<string, string>>;
  /** Adds ` (got <value>)` with the flag's value, for options whose messages do not carry it. */
  withValue?: boolean;
}

/**
 * `err` named by the flag (`--port must be ... (got 99999)`, `details.field` `--port`, the original as `cause`) when
 * it is a refusal of `naming.code` whose field is one of `command`'s flags; any other error is returned as it is.
 */
export function namedByFlag(err: unknown, command: FlagSource, naming: FlagNaming): unknown {
  if (!(err instanceof BridgeError) || err.code !== naming.code) return err;
  const field = err.details.field;
  const prefix = naming.fieldPrefix ?? "";
  if (typeof field !== "string" || !field.startsWith(prefix)) return err;
  const path = field.slice(prefix.length);
  const name = naming.attributeOf?.[path] ?? path;
  const option = command.options.find((o) => o.attributeName() === name);
  if (option?.long === undefined) return err;
  const rule = err.message.startsWith(`${field} `) ? err.message.slice(field.length + 1) : err.message;
  const got = naming.withValue ? ` (got ${String(command.getOptionValue(name))})` : "";
  return new BridgeError(err.code, `${option.long} ${rule}${got}`, { field: option.long }, { cause: err });
}
