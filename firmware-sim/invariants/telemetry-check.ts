import { DEFAULT_REQUEST_TIMEOUT_MS, fetchWithin } from "../http-request.ts";

/**
 * "Every telemetry message that got a PUBACK is later readable." The fleet knows which sequence numbers were
 * acknowledged; a verifier says which of them the system under test can give back. Verifiers are plain functions so a
 * test can read the agent's SQLite directly, and the bridge's REST API is one implementation among others.
 */

/** What reading back one device's telemetry gave. */
export type TelemetryReadback =
  | { status: "read"; missingSeqs: readonly number[] }
  | { status: "unavailable"; reason: string };

/**
 * Checks that the acknowledged telemetry of `deviceId` is readable. `ackedSeqs` are the values of the `seq` reading
 * of every acknowledged message (unique per run and device), ascending.
 */
export type TelemetryVerifier = (deviceId: string, ackedSeqs: readonly number[]) => Promise<TelemetryReadback>;

/**
 * Builds a verifier from a function that returns whatever holds the device's stored telemetry (API JSON, SQLite rows,
 * decoded frames): every number under a `seq` key, or the `value`/`v` of an object whose `metric`/`n` is `"seq"`,
 * counts as readable.
 *
 * @example
 * const verify = verifierFromReader(async (id) => {
 *   const result = await runtime.call(id, "queryTelemetry", [{ metric: "seq", limit: 5000 }]);
 *   if (!result.ok) throw new Error(result.message);
 *   return result.value;
 * });
 */
export function verifierFromReader(read: (deviceId: string) => Promise<unknown>): TelemetryVerifier {
  return async (deviceId, ackedSeqs) => {
    let stored: unknown;
    try {
      stored = await read(deviceId);
    } catch (err) {
      return { status: "unavailable", reason: err instanceof Error ? err.message : String(err) };
    }
    const found = new Set<number>();
    collectSeqs(stored, found, 0);
    return { status: "read", missingSeqs: ackedSeqs.filter((seq) => !found.has(seq)) };
  };
}

/** Options of {@link httpTelemetryVerifier}. */
export interface HttpVerifierOptions {
  /** Base URL of the bridge's operator HTTP server, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** Operator API token, sent as `Authorization: Bearer`. Default none. */
  token?: string;
  /** Rows per page; the API caps it at 5000. Default 5000. */
  pageSize?: number;
  /** Pages read at most per device, so a broken API cannot loop forever. Default 1000. */
  maxPages?: number;
  /** Limit of one request, headers and body, in ms; past it the device is unreadable. Default 30000. */
  requestTimeoutMs?: number;
  /** The fetch to use (injectable for tests). Default the global fetch. */
  fetch?: typeof fetch;
}

/**
 * Reads `GET {baseUrl}/api/devices/{id}/telemetry?metric=seq` page by page, oldest first: with the answer's `next`
 * passed back as `cursor`, or, from a server whose answers have none, paging on `ts` (which re-reads the readings of
 * the last page's millisecond and cannot get past more of them than a page holds).
 */
export function httpTelemetryVerifier(options: HttpVerifierOptions): TelemetryVerifier {
  const doFetch = options.fetch ?? fetch;
  const pageSize = options.pageSize ?? 5000;
  const maxPages = options.maxPages ?? 1000;
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const base = options.baseUrl.replace(/\/+$/, "");
  const headers: Record<string, string> = { accept: "application/json" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  return verifierFromReader(async (deviceId) => {
    const rows: unknown[] = [];
    // Device clocks may be skewed into the future, so the range is wide open rather than "the last day".
    let fromMs = 0;
    const toMs = 9e14;
    let cursor: string | undefined;
    for (let page = 0; page < maxPages; page++) {
      const after = cursor === undefined ? "" : `&cursor=${encodeURIComponent(cursor)}`;
      const url = `${base}/api/devices/${encodeURIComponent(deviceId)}/telemetry?metric=seq&from=${fromMs}&to=${toMs}&limit=${pageSize}${after}`;
      const body: unknown = await fetchWithin(doFetch, url, { headers }, timeoutMs, (response) => {
        if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
        return response.json();
      });
      const pageRows = isRecord(body) && Array.isArray(body.readings) ? body.readings : Array.isArray(body) ? body : [];
      rows.push(...pageRows);
      if (pageRows.length === 0) break;
      // `next` says whether more follow, whatever the page's length: the bridge caps `limit` (at 5000), so a page
      // shorter than pageSize may be full, and stopping there reported every later acknowledged reading as lost.
      if (isRecord(body) && typeof body.next === "string") {
        cursor = body.next;
        continue;
      }
      if (isRecord(body) && body.next === null) break;
      const applied = isRecord(body) && typeof body.limit === "number" ? Math.min(body.limit, pageSize) : pageSize;
      if (pageRows.length < applied) break;
      const lastTs = rowTs(pageRows[pageRows.length - 1]);
      // Same-millisecond rows may straddle pages; re-reading from the last ts duplicates some rows, which a set absorbs.
      if (lastTs === undefined || lastTs <= fromMs) break;
      fromMs = lastTs;
    }
    return rows;
  });
}

function collectSeqs(value: unknown, found: Set<number>, depth: number): void {
  if (depth > 8) return;
  if (Array.isArray(value)) {
    for (const item of value) collectSeqs(item, found, depth + 1);
    return;
  }
  if (!isRecord(value)) return;
  const name = value.metric ?? value.n;
  if (name === "seq") {
    const v = value.value ?? value.v;
    if (typeof v === "number") found.add(v);
  }
  for (const [key, inner] of Object.entries(value)) {
    if (key === "seq" && typeof inner === "number") found.add(inner);
    else if (typeof inner === "object" && inner !== null) collectSeqs(inner, found, depth + 1);
  }
}

function rowTs(row: unknown): number | undefined {
  if (!isRecord(row)) return undefined;
  const ts = row.ts ?? row.t ?? row.at;
  return typeof ts === "number" ? ts : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
