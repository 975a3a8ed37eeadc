/**
 * The telemetry page cursor: a page's `next`, which the client passes back as `cursor` for the page after it.
 *
 * `<ts>_<id>_<a|d>_<query>`: the last reading's ts (ms since the epoch) and id, the page's order, and a digest of the
 * query the page belongs to (device, metric, from, to). Opaque to clients. Paging on `ts` alone could not go on among
 * readings that share one. The order is in it because "after" means the other way in the other order: a cursor of an
 * `asc` page passed with `order=desc` returned the first page again. The query is in it because a cursor is a
 * position among that query's readings only: passed with another metric it paged that metric from the first one's
 * position, skipping readings without a word. The limit is no part of it: a client may change its page size.
 */
import { createHash } from "node:crypto";
import { isValueMap, type Value, type ValueMap } from "../../../codecs/frames.ts";
import { API_ERROR_CODES, ApiError } from "../errors.ts";

/** What a cursor is bound to. `from` and `to` as given (ms), undefined when left to their defaults, which move. */
export interface TelemetryCursorQuery {
  deviceId: string;
  metric: string | undefined;
  from: number | undefined;
  to: number | undefined;
  order: "asc" | "desc";
}

const CURSOR = /^(-?\d{1,16})_(\d{1,16})_([ad])_([0-9a-f]{16})$/;
/** The cursors handed out before this one: `<ts>_<id>`, then `<ts>_<id>_<a|d>`. They name no query. */
const CURSOR_WITHOUT_QUERY = /^-?\d{1,16}_\d{1,16}(?:_[ad])?$/;

const CURSOR_ORDER = { a: "asc", d: "desc" } as const;

/** The reading after which the page of `query` starts (`after` of the agent's `queryTelemetryPage`). */
export function parseTelemetryCursor(text: string, query: TelemetryCursorQuery): ValueMap {
  if (CURSOR_WITHOUT_QUERY.test(text)) {
    throw cursorError(
      "query.cursor was handed out by an earlier version of the bridge and does not say which query it pages: " +
        "ask for the first page again, without cursor",
    );
  }
  const match = CURSOR.exec(text);
  const ts = Number(match?.[1]);
  const id = Number(match?.[2]);
  if (match === null || !Number.isSafeInteger(ts) || !Number.isSafeInteger(id)) {
    throw cursorError("query.cursor must be a page's next, as returned");
  }
  const pagedIn = CURSOR_ORDER[match[3] as keyof typeof CURSOR_ORDER];
  if (pagedIn !== query.order) {
    throw cursorError(`query.cursor is the next of a page in order=${pagedIn}: page with the same order`);
  }
  if (match[4] !== queryDigest(query)) {
    throw cursorError(
      "query.cursor is the next of a page of another query: pass the device, metric, from and to of the page " +
        "that returned it (limit may change), or leave cursor out for the first page",
    );
  }
  return { ts, id };
}

/** The cursor of the page after the one `query` answered, whose last reading the agent gave as `next`. */
export function formatTelemetryCursor(next: Value | undefined, query: TelemetryCursorQuery): string | null {
  if (!isValueMap(next) || typeof next.ts !== "number" || typeof next.id !== "number") return null;
  return `${next.ts}_${next.id}_${query.order === "asc" ? "a" : "d"}_${queryDigest(query)}`;
}

/**
 * 64 bits of SHA-256 over the query: enough that a cursor passed with another query is not taken for its own. It
 * guards against a mistake, not an attacker: a client can only page its own device's readings either way.
 */
function queryDigest(query: TelemetryCursorQuery): string {
  const bound = [query.deviceId, query.metric ?? null, query.from ?? null, query.to ?? null];
  return createHash("sha256").update(JSON.stringify(bound)).digest("hex").slice(0, 16);
}

function cursorError(message: string): ApiError {
  return new ApiError(400, API_ERROR_CODES.validation, message, "query.cursor");
}
