/**
 * Device credentials for a simulated fleet, as the bridge's `devices add --json` prints them: a JSON array of
 * `{"id","secret"}` objects, or one such object per line (JSON lines). Both are accepted.
 */
import { readFile } from "node:fs/promises";
import { DEVICE_ID_RULE, isValidDeviceId } from "../codecs/index.ts";
import { BridgeError } from "../errors/index.ts";
import { SimErrorCode } from "./errors.ts";

/** One device's identity. */
export interface DeviceCredential {
  id: string;
  secret: string;
}

/** Parses credentials text (a JSON array or JSON lines); throws BRIDGE_ERR_SIM_CREDENTIALS naming the entry. */
export function parseCredentials(text: string): DeviceCredential[] {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  let entries: unknown[];
  if (trimmed.startsWith("[")) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      entries = Array.isArray(parsed) ? parsed : [parsed];
    } catch (err) {
      throw new BridgeError(SimErrorCode.credentials, "credentials are not valid JSON", {}, { cause: err });
    }
  } else {
    entries = trimmed
      .split(/\r?\n/)
      .map((line, index) => ({ line: line.trim(), index }))
      .filter(({ line }) => line !== "")
      .map(({ line, index }) => {
        try {
          return JSON.parse(line) as unknown;
        } catch (err) {
          throw new BridgeError(
            SimErrorCode.credentials,
            `credentials line ${index + 1} is not valid JSON`,
            { line: index + 1 },
            { cause: err },
          );
        }
      });
  }
  const seen = new Set<string>();
  return entries.map((entry, index) => {
    const record = typeof entry === "object" && entry !== null ? (entry as Record<string, unknown>) : {};
    const { id, secret } = record;
    if (!isValidDeviceId(id)) {
      throw new BridgeError(
        SimErrorCode.credentials,
        `credentials entry ${index + 1}: "id" must be ${DEVICE_ID_RULE}`,
        { entry: index + 1, field: "id" },
      );
    }
    if (typeof secret !== "string" || secret === "") {
      throw new BridgeError(
        SimErrorCode.credentials,
        `credentials entry ${index + 1} (${id}): "secret" must be a non-empty string`,
        { entry: index + 1, field: "secret" },
      );
    }
    if (seen.has(id)) {
      throw new BridgeError(SimErrorCode.credentials, `credentials entry ${index + 1}: duplicate id ${id}`, {
        entry: index + 1,
        field: "id",
      });
    }
    seen.add(id);
    return { id, secret };
  });
}

/** Reads and parses a credentials file. */
export async function loadCredentials(path: string): Promise<DeviceCredential[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new BridgeError(SimErrorCode.credentials, `cannot read credentials file ${path}`, { path }, { cause: err });
  }
  return parseCredentials(text);
}
