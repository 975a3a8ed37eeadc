/**
 * "A command ack that got a PUBACK is recorded as its outcome": after the run, every command whose ack the broker
 * acknowledged must be finished on the bridge with the outcome the ack gave (ok -> SUCCEEDED, not ok -> FAILED).
 * Like the telemetry check, a plain function so tests can look at an agent directly; the operator API is one
 * implementation.
 */

import { DEFAULT_REQUEST_TIMEOUT_MS, fetchWithin } from "../http-request.ts";

/** One command the device acked, and whether its ack said ok. */
export interface AckedCommand {
  id: string;
  ok: boolean;
}

/** An acked command the bridge records with another outcome than the ack's. */
export interface MismatchedCommand {
  id: string;
  state: string;
  expected: "SUCCEEDED" | "FAILED";
}

/** What reading the commands back gave. */
export type CommandReadback =
  | {
      status: "read";
      /** Still waiting (QUEUED or SENT) although the ack was acknowledged. */
      unrecorded: readonly { id: string; state: string }[];
      /** Finished, but not as the ack said. Absent means none. */
      mismatched?: readonly MismatchedCommand[];
      /** Unknown to the bridge (404): an acknowledged ack of a command the bridge does not hold. Absent means none. */
      missing?: readonly string[];
    }
  | { status: "unavailable"; reason: string };

/** Checks that the acked commands of `deviceId` are recorded as finished with the ack's outcome. */
export type CommandVerifier = (deviceId: string, acked: readonly AckedCommand[]) => Promise<CommandReadback>;

/** States in which a command still waits for its ack: an acknowledged ack must have moved it on. */
const WAITING_STATES = new Set(["QUEUED", "SENT"]);
/** What a 404 reads as: the command is unknown to the bridge. */
const NOT_FOUND = Symbol("not found");

/**
 * The state an acked command must be in. A device that refuses a command it believes expired acks `ok: false`; the
 * bridge may have expired it by then too, so EXPIRED also matches a failed ack (never a successful one).
 */
export function ackMatchesState(ok: boolean, state: string): boolean {
  return ok ? state === "SUCCEEDED" : state === "FAILED" || state === "EXPIRED";
}

/**
 * Reads `GET {baseUrl}/api/devices/{id}/commands/{cmdId}` per acked command and compares the state with the ack.
 * A 404 is a violation (`missing`): the bridge keeps the last 1000 finished commands per device by default, far more
 * than a run acks, so a pruned command means the run was long or the history limit tiny; raise it rather than
 * weaken the check.
 */
export function httpCommandVerifier(options: {
  baseUrl: string;
  token?: string;
  /** Limit of one request, headers and body, in ms; past it the device is unreadable. Default 30000. */
  requestTimeoutMs?: number;
  fetch?: typeof fetch;
}): CommandVerifier {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const base = options.baseUrl.replace(/\/+$/, "");
  const headers: Record<string, string> = { accept: "application/json" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  return async (deviceId, acked) => {
    const unrecorded: { id: string; state: string }[] = [];
    const mismatched: MismatchedCommand[] = [];
    const missing: string[] = [];
    try {
      for (const command of acked) {
        const url = `${base}/api/devices/${encodeURIComponent(deviceId)}/commands/${encodeURIComponent(command.id)}`;
        const body: unknown = await fetchWithin(doFetch, url, { headers }, timeoutMs, async (response) => {
          if (response.status === 404) {
            await response.arrayBuffer();
            return NOT_FOUND;
          }
          if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
          return response.json();
        });
        if (body === NOT_FOUND) {
          missing.push(command.id);
          continue;
        }
        const state = typeof body === "object" && body !== null && "state" in body ? String(body.state) : "unknown";
        if (WAITING_STATES.has(state)) unrecorded.push({ id: command.id, state });
        else if (!ackMatchesState(command.ok, state)) {
          mismatched.push({ id: command.id, state, expected: command.ok ? "SUCCEEDED" : "FAILED" });
        }
      }
    } catch (err) {
      return { status: "unavailable", reason: err instanceof Error ? err.message : String(err) };
    }
    return { status: "read", unrecorded, mismatched, missing };
  };
}
