/**
 * A telemetry bound with a time but no offset is UTC, as a bare date is: read by Date.parse it was the server's local
 * time, so the same query gave another range on a server not set to UTC.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { parseTime } from "../../app/api/routes/telemetry.ts";

let savedTz: string | undefined;
before(() => {
  savedTz = process.env.TZ;
  // Node reads TZ again when it changes: this process now runs an hour ahead of UTC in January.
  process.env.TZ = "Europe/Berlin";
});
after(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

test("a date-time without an offset is read as UTC, whatever the server's time zone", () => {
  const noon = Date.UTC(2026, 0, 15, 12, 0, 0);
  assert.equal(parseTime("2026-01-15T12:00", "query.from"), noon);
  assert.equal(parseTime("2026-01-15 12:00", "query.from"), noon);
  assert.equal(parseTime("2026-01-15T12:00:30.25", "query.from"), noon + 30_250);
  assert.equal(parseTime("2026-01-15", "query.from"), Date.UTC(2026, 0, 15));
});

test("a date-time with an offset keeps it", () => {
  assert.equal(parseTime("2026-01-15T12:00Z", "query.to"), Date.UTC(2026, 0, 15, 12));
  assert.equal(parseTime("2026-01-15T12:00+01:00", "query.to"), Date.UTC(2026, 0, 15, 11));
  assert.equal(parseTime("2026-01-15 12:00-02:30", "query.to"), Date.UTC(2026, 0, 15, 14, 30));
});

test("a lower bound between two ms is the next ms, an upper bound the one before: both bounds are inclusive", () => {
  const noon = Date.UTC(2026, 0, 15, 12, 0, 0);
  assert.equal(parseTime("2026-01-15T12:00:00.0009Z", "query.from", true), noon + 1);
  assert.equal(parseTime("2026-01-15T12:00:00.000000001Z", "query.from", true), noon + 1);
  assert.equal(parseTime("2026-01-15T12:00:00.001000Z", "query.from", true), noon + 1, "no part below a ms");
  assert.equal(parseTime("2026-01-15T12:00:00.5Z", "query.from", true), noon + 500);
  assert.equal(parseTime("2026-01-15T12:00:00.0009Z", "query.to"), noon);
});
