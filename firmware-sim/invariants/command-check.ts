/**
 * "A command ack that got a PUBACK is recorded": after the run, every command whose ack the broker acknowledged
 * must have left the bridge's outbox (not QUEUED or SENT any more). Like the telemetry check, a plain function so
 * tests can look at an agent directly; the operator API is one implementation.
 */

/** One command the device acked, and whether its ack said ok. */
export interface AckedCommand {
  id: string;
  ok: boolean;
}

/** What reading the commands back gave. */
export type CommandReadback =
  | { status: "read"; unrecorded: readonly { id: string; state: string }[] }
  | { status: "unavailable"; reason: string };

/** Checks that the acked commands of `deviceId` are recorded as finished. */
export type CommandVerifier = (deviceId: string, acked: readonly AckedCommand[]) => Promise<CommandReadback>;

/** States in which a command still waits for its ack: an acknowledged ack must have moved it on. */
const WAITING_STATES = new Set(["QUEUED", "SENT"]);

/**
 * Reads `GET {baseUrl}/api/devices/{id}/commands/{cmdId}` per acked command. A 404 counts as recorded: finished
 * commands beyond the agent's history limit are pruned.
 */
export function httpCommandVerifier(options: {
  baseUrl: string;
  token?: string;
  fetch?: typeof fetch;
}): CommandVerifier {
  const doFetch = options.fetch ?? fetch;
  const base = options.baseUrl.replace(/\/+$/, "");
  const headers: Record<string, string> = { accept: "application/json" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  return async (deviceId, acked) => {
    const unrecorded: { id: string; state: string }[] = [];
    try {
      for (const command of acked) {
        const url = `${base}/api/devices/${encodeURIComponent(deviceId)}/commands/${encodeURIComponent(command.id)}`;
        const response = await doFetch(url, { headers });
        if (response.status === 404) continue;
        if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
        const body: unknown = await response.json();
        const state = typeof body === "object" && body !== null && "state" in body ? String(body.state) : "unknown";
        if (WAITING_STATES.has(state)) unrecorded.push({ id: command.id, state });
      }
    } catch (err) {
      return { status: "unavailable", reason: err instanceof Error ? err.message : String(err) };
    }
    return { status: "read", unrecorded };
  };
}
