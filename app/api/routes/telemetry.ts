/**
 * Stored telemetry of one device, by time range and metric. Time bounds accept ms since the epoch or ISO 8601.
 */
import type { FastifyInstance } from "fastify";
import { isValueMap, type ValueMap } from "../../../codecs/frames.ts";
import { AGENT_CALL_RESPONSES, callDeviceAgent } from "../agent-call.ts";
import type { OperatorDeps } from "../deps.ts";
import { API_ERROR_CODES, ApiError } from "../errors.ts";
import { toJsonValue } from "../json-value.ts";
import { telemetryPageAnswer } from "../response-schemas.ts";
import { deviceIdParams, integerField } from "../schemas.ts";
import { formatTelemetryCursor, parseTelemetryCursor, type TelemetryCursorQuery } from "./telemetry-cursor.ts";

/** Most readings one request returns; larger `limit`s are capped, not refused. */
export const MAX_TELEMETRY_LIMIT = 5000;
export const DEFAULT_TELEMETRY_LIMIT = 500;
/** Range used when `from` is absent: the last day. */
export const DEFAULT_TELEMETRY_RANGE_MS = 24 * 3600 * 1000;

interface TelemetryQuery {
  from?: string;
  to?: string;
  metric?: string;
  limit?: number;
  order?: "asc" | "desc";
  cursor?: string;
}

export function registerTelemetryRoutes(api: FastifyInstance, deps: OperatorDeps): void {
  const now = () => (deps.clock ?? Date).now();
  api.get<{ Params: { id: string }; Querystring: TelemetryQuery }>(
    "/devices/:id/telemetry",
    {
      schema: {
        summary: "Stored readings in a time range, oldest first unless order=desc",
        tags: ["telemetry"],
        params: deviceIdParams,
        querystring: {
          type: "object",
          properties: {
            from: { type: "string", description: "Start, ms since the epoch or ISO 8601; default 24 h before `to`" },
            to: { type: "string", description: "End, ms since the epoch or ISO 8601; default now" },
            metric: { type: "string", pattern: "^[A-Za-z0-9_.:/-]{1,128}$", description: "Only this metric" },
            order: {
              type: "string",
              enum: ["asc", "desc"],
              default: "asc",
              description: "asc (default): oldest first, for paging on ts; desc: newest first",
            },
            limit: {
              ...integerField(1),
              default: DEFAULT_TELEMETRY_LIMIT,
              description: `Capped at ${MAX_TELEMETRY_LIMIT}`,
            },
            cursor: {
              type: "string",
              description:
                "The previous page's `next`: the readings after its last one. Pass the same device, metric, from, to " +
                "and order as that page (limit may change)",
            },
          },
        },
      },
      config: { successSchema: telemetryPageAnswer, errorResponses: AGENT_CALL_RESPONSES },
    },
    async (request) => {
      const q = request.query;
      const to = q.to === undefined ? now() : parseTime(q.to, "query.to");
      const from = q.from === undefined ? to - DEFAULT_TELEMETRY_RANGE_MS : parseTime(q.from, "query.from", true);
      if (from > to)
        throw new ApiError(400, API_ERROR_CODES.validation, "query.from must not be after query.to", "query.from");
      const limit = Math.min(q.limit ?? DEFAULT_TELEMETRY_LIMIT, MAX_TELEMETRY_LIMIT);
      const order = q.order ?? "asc";
      const spec: ValueMap = { from, to, limit, order };
      if (q.metric !== undefined) spec.metric = q.metric;
      // Bound as given: a bound left to its default (now, 24 h before `to`) moves with the clock from page to page.
      const query: TelemetryCursorQuery = {
        deviceId: request.params.id,
        metric: q.metric,
        from: q.from === undefined ? undefined : from,
        to: q.to === undefined ? undefined : to,
        order,
      };
      if (q.cursor !== undefined) spec.after = parseTelemetryCursor(q.cursor, query);
      const page = await callDeviceAgent(deps, request.params.id, "queryTelemetryPage", [spec]);
      const { readings, next } = isValueMap(page) ? page : { readings: [], next: null };
      return {
        from,
        to,
        metric: q.metric ?? null,
        limit,
        order,
        readings: toJsonValue(readings),
        next: formatTelemetryCursor(next, query),
      };
    },
  );
}

/**
 * ISO 8601 dates and date-times (`2026-01-15`, `2026-01-15T12:00:00.5Z`, `2026-01-15 12:00+01:00`). Checked before
 * `Date.parse`, whose fallback reads almost any text as some date (`-5` is May 2001), so a typo would silently query
 * the wrong range. A date-time without an offset is UTC, as a bare date is: `Date.parse` reads it in the server's
 * time zone, so the same query meant another range on a server not set to UTC.
 */
const ISO_8601 = /^(\d{4})-(\d{2})(?:-(\d{2})(?:([T ])\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?)?$/;

/**
 * Parses ms-since-epoch digits or an ISO 8601 date; a 400 naming `field` otherwise. Stored times are whole ms and both
 * bounds are inclusive: a time between two ms is the next one for a lower bound (`roundUp`), the one before for an
 * upper bound (Date.parse drops what is below a ms, so `from=...00.0009Z` would take in a reading at `.000`).
 */
export function parseTime(text: string, field: string, roundUp = false): number {
  const iso = ISO_8601.exec(text);
  let ms = /^\d{1,15}$/.test(text)
    ? Number(text)
    : iso !== null && dayInMonth(iso[1], iso[2], iso[3])
      ? Date.parse(iso[4] !== undefined && iso[5] === undefined ? `${text}Z` : text)
      : Number.NaN;
  if (roundUp && iso !== null && /[1-9]/.test(/\.\d{3}(\d*)/.exec(text)?.[1] ?? "")) ms += 1;
  if (!Number.isFinite(ms)) {
    throw new ApiError(
      400,
      API_ERROR_CODES.validation,
      `${field} must be ms since the epoch or an ISO 8601 date`,
      field,
    );
  }
  return ms;
}

/**
 * Whether the month has the day. `Date.parse` takes any day up to 31 and rolls it over into the next month
 * (`2026-02-29` is March 1), which would query a range the operator never asked for.
 */
function dayInMonth(year: string, month: string, day: string | undefined): boolean {
  if (day === undefined) return true;
  // Months out of range are left to Date.parse, which reads them as NaN. Leap years computed here rather than by
  // Date.UTC, which takes years 0-99 as 1900-1999.
  const y = Number(year);
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const last = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][Number(month) - 1] ?? 31;
  return Number(day) <= last;
}
