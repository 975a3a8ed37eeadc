/**
 * Paging through telemetry with `next` / `cursor`. Readings of one frame share their ts, so paging on `ts` alone either
 * repeated them (`from=<last ts>`) or lost those that did not fit the page (`from=<last ts>+1`); a cursor on the last
 * reading continues exactly where the page ended.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AUTH, type ApiFixture, createApiFixture } from "./helpers.ts";

type Page = { readings: Array<{ ts: number; metric: string; value: number }>; next: string | null };

describe("telemetry pages", () => {
  let f: ApiFixture;
  let t0: number;
  before(async () => {
    f = await createApiFixture();
    await f.provision("page-1");
    const dev = await f.device("page-1");
    t0 = f.clock.now() - 10_000;
    // Four frames of three readings each, every reading of a frame at its frame's ts; two frames share a ts.
    const frames = [
      { ts: t0, r: { a: 1, b: 2, c: 3 } },
      { ts: t0 + 1000, r: { a: 4, b: 5, c: 6 } },
      { ts: t0 + 1000, r: { a: 7, b: 8, c: 9 } },
      { ts: t0 + 2000, r: { a: 10, b: 11, c: 12 } },
    ];
    for (const frame of frames) assert.equal((await dev.send({ channel: "telemetry", frame })).status, "committed");
  });
  after(() => f.close());

  const get = async (query: string) => {
    const res = await f.app.inject({ method: "GET", url: `/api/devices/page-1/telemetry?${query}`, headers: AUTH });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as Page;
  };

  /** Every page of `query` at `limit`, following `next`. */
  const allPages = async (query: string, limit: number) => {
    const pages: Page[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await get(`${query}&limit=${limit}${cursor === null ? "" : `&cursor=${cursor}`}`);
      pages.push(page);
      cursor = page.next;
      assert.ok(pages.length < 20, "paging ends");
    } while (cursor !== null);
    return pages;
  };

  for (const limit of [1, 2, 4, 5, 12]) {
    test(`oldest first, ${limit} a page: every reading once, in order, pages ending inside frames`, async () => {
      const pages = await allPages(`from=${t0}&order=asc`, limit);
      const values = pages.flatMap((p) => p.readings.map((r) => r.value));
      assert.deepEqual(values, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      for (const page of pages.slice(0, -1)) assert.equal(page.readings.length, limit, "only the last page is short");
    });

    test(`newest first, ${limit} a page: every reading once, in order`, async () => {
      const values = (await allPages(`from=${t0}&order=desc`, limit)).flatMap((p) => p.readings.map((r) => r.value));
      assert.deepEqual(values, [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    });
  }

  test("one metric, a page at a time, oldest and newest first", async () => {
    const asc = (await allPages(`from=${t0}&metric=b&order=asc`, 1)).flatMap((p) => p.readings.map((r) => r.value));
    assert.deepEqual(asc, [2, 5, 8, 11]);
    const desc = (await allPages(`from=${t0}&metric=b&order=desc`, 3)).flatMap((p) => p.readings.map((r) => r.value));
    assert.deepEqual(desc, [11, 8, 5, 2]);
  });

  test("a cursor passed with the other order is a 400 naming it, not the first page again", async () => {
    const first = await get(`from=${t0}&order=asc&limit=2`);
    assert.ok(first.next !== null);
    const res = await f.app.inject({
      method: "GET",
      url: `/api/devices/page-1/telemetry?from=${t0}&order=desc&limit=2&cursor=${first.next}`,
      headers: AUTH,
    });
    assert.equal(res.statusCode, 400, res.body);
    const body = res.json() as { error: { code: string; field?: string; message: string } };
    assert.deepEqual([body.error.code, body.error.field], ["BRIDGE_ERR_API_VALIDATION", "query.cursor"]);
    assert.match(body.error.message, /order=asc/);
  });

  /** A refused request: its status, code, field and message. */
  const refused = async (url: string) => {
    const res = await f.app.inject({ method: "GET", url, headers: AUTH });
    const body = res.json() as { error: { code: string; field?: string; message: string } };
    return { status: res.statusCode, code: body.error?.code, field: body.error?.field, message: body.error?.message };
  };

  test("a cursor passed with another metric, range or device is a 400 naming it, not another query's page", async () => {
    await f.provision("page-2");
    const first = await get(`from=${t0}&to=${t0 + 5000}&metric=a&order=asc&limit=1`);
    assert.ok(first.next !== null);
    for (const other of [
      `page-1/telemetry?from=${t0}&to=${t0 + 5000}&metric=b`,
      `page-1/telemetry?from=${t0}&to=${t0 + 5000}`,
      `page-1/telemetry?from=${t0 + 1}&to=${t0 + 5000}&metric=a`,
      `page-1/telemetry?from=${t0}&to=${t0 + 4000}&metric=a`,
      `page-1/telemetry?from=${t0}&metric=a`,
      `page-2/telemetry?from=${t0}&to=${t0 + 5000}&metric=a`,
    ]) {
      const res = await refused(`/api/devices/${other}&order=asc&limit=1&cursor=${first.next}`);
      assert.equal(res.status, 400, other);
      assert.deepEqual([res.code, res.field], ["BRIDGE_ERR_API_VALIDATION", "query.cursor"], other);
      assert.match(res.message, /another query/, other);
    }
  });

  test("the same query written another way, or with another limit, goes on paging with its cursor", async () => {
    const iso = (ms: number) => new Date(ms).toISOString();
    const first = await get(`from=${t0}&metric=b&order=asc&limit=1`);
    const second = await get(`from=${iso(t0)}&metric=b&order=asc&limit=2&cursor=${first.next}`);
    assert.deepEqual(
      second.readings.map((r) => r.value),
      [5, 8],
    );
  });

  test("a cursor handed out before cursors named their query is a 400 saying to start from the first page", async () => {
    const first = await get(`from=${t0}&order=asc&limit=2`);
    const position = /^(-?\d+_\d+)_a_/.exec(first.next ?? "")?.[1];
    assert.ok(position !== undefined, String(first.next));
    for (const old of [position, `${position}_a`]) {
      const res = await refused(`/api/devices/page-1/telemetry?from=${t0}&order=asc&limit=2&cursor=${old}`);
      assert.equal(res.status, 400, old);
      assert.equal(res.field, "query.cursor");
      assert.match(res.message, /first page/, old);
    }
  });

  test("a page that is not full has no next", async () => {
    const page = await get(`from=${t0}&limit=100`);
    assert.equal(page.readings.length, 12);
    assert.equal(page.next, null);
  });

  for (const bad of [
    "x",
    "12",
    "1_",
    "_1",
    "1_2_3",
    "1.5_2",
    "99999999999999999_1",
    "1_2_a_xyz",
    "1_2_a_0123456789abcdef0",
  ]) {
    test(`a cursor that is no page's next (${bad}) is a 400 naming it`, async () => {
      const res = await f.app.inject({
        method: "GET",
        url: `/api/devices/page-1/telemetry?cursor=${bad}`,
        headers: AUTH,
      });
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json() as { error: { code: string; field?: string } };
      assert.equal(body.error.code, "BRIDGE_ERR_API_VALIDATION");
      assert.equal(body.error.field, "query.cursor");
    });
  }
});
