import { BridgeError } from "./bridge-error.ts";

/**
 * Refuses a database a newer build wrote (`version` past `known`, the schema version this build knows; the bridge was
 * rolled back): this build knows neither its tables nor the rules its rows keep, so the caller opens nothing rather
 * than misread rows or write rows the newer build finds wrong. `subject` begins the message ("cannot open ...");
 * `details` carry `schemaVersion` and `knownSchemaVersion`, which `start` reads to end with exit code 2
 * (app/cli/config-flags.ts).
 */
export function refuseNewerSchema(
  code: string,
  subject: string,
  version: number,
  known: number,
  details: Record<string, unknown> = {},
): void {
  if (version <= known) return;
  throw new BridgeError(
    code,
    `${subject}: its schema version ${version} is newer than this agent-bridge knows (${known}); a newer ` +
      "agent-bridge wrote it: use that version or a later one",
    { ...details, schemaVersion: version, knownSchemaVersion: known },
  );
}
