/**
 * A telemetry bound is a date the calendar has. V8's Date.parse takes a day up to 31 in any month and rolls it over
 * (`2026-02-29` is March 1, `2026-04-31` is May 1), so a mistyped day queried a range the operator never asked for
 * with a 200; it is a 400 naming the parameter, as other text that is no date.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

type ErrorBody = { error: { code: string; message: string; field?: string } };

describe("telemetry time bounds on the calendar", () => {
  let f: ApiFixture;
  before(async () => {
    f = await createApiFixture();
    await f.provision("cal-1");
  });
  after(() => f.close());

  const get = (query: string) =>
    f.app.inject({ method: "GET", url: `/api/devices/cal-1/telemetry?${query}`, headers: AUTH });

  for (const bad of ["2026-02-29", "2026-04-31", "2026-02-30T00:00:00Z", "2026-06-31%2012:00%2B02:00"]) {
    test(`a day the month does not have (${decodeURIComponent(bad)}) is a 400 naming the parameter`, async () => {
      const res = await get(`from=2026-01-01&to=${bad}`);
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json() as ErrorBody;
      assert.equal(body.error.code, "BRIDGE_ERR_API_VALIDATION");
      assert.equal(body.error.field, "query.to");
    });
  }

  test("the last day of each month is taken, February 29 in a leap year included", async () => {
    for (const [to, ms] of [
      ["2028-02-29", Date.UTC(2028, 1, 29)],
      ["2026-02-28", Date.UTC(2026, 1, 28)],
      ["2026-04-30T23:59:59Z", Date.UTC(2026, 3, 30, 23, 59, 59)],
      ["2026-12-31", Date.UTC(2026, 11, 31)],
      ["2000-02-29", Date.UTC(2000, 1, 29)],
      ["0000-02-29", Date.parse("0000-02-29T00:00:00Z")],
    ] as const) {
      const res = await get(`from=0000-01-01&to=${to}`);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((res.json() as { to: number }).to, ms, to);
    }
  });

  test("February 29 of a century year that is no leap year (1900) is refused", async () => {
    const res = await get("from=1900-02-29");
    assert.equal(res.statusCode, 400, res.body);
    assert.equal((res.json() as ErrorBody).error.field, "query.from");
  });
});
