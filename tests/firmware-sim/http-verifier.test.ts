import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { ackMatchesState, httpCommandVerifier, httpTelemetryVerifier } from "../../firmware-sim/index.ts";
import { stalledFetch, within } from "./helpers/stalled-fetch.ts";

// A stand-in for GET /api/devices/{id}/telemetry: rows oldest first, `from`/`limit` paging, a bearer token.
describe("telemetry read-back over the operator API", () => {
  const stored = new Map<string, { ts: number; metric: string; value: number }[]>();
  const requests: string[] = [];
  /** Devices whose answers carry `next` and take `cursor`, as the bridge's do. */
  const cursorDevices = new Set<string>();
  /** Largest page the stand-in serves to cursor devices, as the bridge caps `limit` at 5000 (docs/api.md). */
  let limitCap = Number.POSITIVE_INFINITY;
  const commandStates = new Map([
    ["c-done", "SUCCEEDED"],
    ["c-failed", "FAILED"],
    ["c-stuck", "SENT"],
  ]);
  let server: http.Server;
  let baseUrl: string;

  before(async () => {
    server = http.createServer((req, res) => {
      requests.push(req.url ?? "");
      if (req.headers.authorization !== "Bearer t0ken") {
        res.writeHead(401).end();
        return;
      }
      const url = new URL(req.url ?? "/", "http://x");
      const command = /^\/api\/devices\/([^/]+)\/commands\/([^/]+)$/.exec(url.pathname);
      if (command) {
        const state = commandStates.get(decodeURIComponent(command[2]));
        if (state === undefined) res.writeHead(404).end();
        else res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id: command[2], state }));
        return;
      }
      const match = /^\/api\/devices\/([^/]+)\/telemetry$/.exec(url.pathname);
      const rows = match ? (stored.get(decodeURIComponent(match[1])) ?? []) : [];
      const from = Number(url.searchParams.get("from") ?? 0);
      const limit = Number(url.searchParams.get("limit") ?? 500);
      const matching = rows.filter((r) => r.ts >= from && r.metric === url.searchParams.get("metric"));
      if (!cursorDevices.has(decodeURIComponent(match?.[1] ?? ""))) {
        const page = matching.slice(0, limit);
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ from, limit, readings: page }));
        return;
      }
      // As the bridge pages: `next` when the page is full, passed back as `cursor` (here an offset).
      const start = Number(url.searchParams.get("cursor") ?? 0);
      const applied = Math.min(limit, limitCap);
      const page = matching.slice(start, start + applied);
      const next = page.length === applied ? String(start + applied) : null;
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ from, limit: applied, readings: page, next }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("pages through the stored seq readings and names the acknowledged ones that are missing", async () => {
    const rows = [];
    for (let seq = 0; seq < 25; seq++)
      if (seq !== 7 && seq !== 19) rows.push({ ts: 1000 + seq * 10, metric: "seq", value: 500 + seq });
    rows.push({ ts: 1000, metric: "temp", value: 21 });
    stored.set("dev-1", rows);
    const verify = httpTelemetryVerifier({ baseUrl: `${baseUrl}/`, token: "t0ken", pageSize: 10 });
    const acked = Array.from({ length: 25 }, (_, i) => 500 + i);
    assert.deepEqual(await verify("dev-1", acked), { status: "read", missingSeqs: [507, 519] });
    assert.ok(
      requests.filter((r) => r.startsWith("/api/devices/dev-1/telemetry?metric=seq")).length >= 3,
      "it read several pages",
    );
  });

  it("follows next as cursor, so more readings in one millisecond than a page holds are all read", async () => {
    // 25 seq readings at one ts: paging on ts could not get past the first page of them.
    stored.set(
      "dev-same-ms",
      Array.from({ length: 25 }, (_, i) => ({ ts: 2000, metric: "seq", value: 700 + i })),
    );
    cursorDevices.add("dev-same-ms");
    const verify = httpTelemetryVerifier({ baseUrl, token: "t0ken", pageSize: 10 });
    const acked = Array.from({ length: 25 }, (_, i) => 700 + i);
    assert.deepEqual(await verify("dev-same-ms", acked), { status: "read", missingSeqs: [] });
    assert.ok(
      requests.some((r) => r.includes("&cursor=20")),
      "it asked for the third page by its cursor",
    );
  });

  it("follows next from a server that caps the page below pageSize, instead of taking the short page as the last", async () => {
    stored.set(
      "dev-capped",
      Array.from({ length: 25 }, (_, i) => ({ ts: 3000 + i, metric: "seq", value: 900 + i })),
    );
    cursorDevices.add("dev-capped");
    limitCap = 10;
    try {
      // pageSize 20 asks for more than the server gives: each full page of 10 carries `next`.
      const verify = httpTelemetryVerifier({ baseUrl, token: "t0ken", pageSize: 20 });
      const acked = Array.from({ length: 25 }, (_, i) => 900 + i);
      assert.deepEqual(await verify("dev-capped", acked), { status: "read", missingSeqs: [] });
    } finally {
      limitCap = Number.POSITIVE_INFINITY;
    }
  });

  it("names acked commands still waiting, recorded with another outcome than the ack's, or unknown (404)", async () => {
    const verify = httpCommandVerifier({ baseUrl, token: "t0ken" });
    const acked = [
      { id: "c-done", ok: true },
      { id: "c-failed", ok: false },
      { id: "c-stuck", ok: true },
      { id: "c-pruned", ok: true },
    ];
    assert.deepEqual(await verify("dev-1", acked), {
      status: "read",
      unrecorded: [{ id: "c-stuck", state: "SENT" }],
      mismatched: [],
      missing: ["c-pruned"],
    });
    const swapped = [
      { id: "c-done", ok: false },
      { id: "c-failed", ok: true },
    ];
    assert.deepEqual(await verify("dev-1", swapped), {
      status: "read",
      unrecorded: [],
      mismatched: [
        { id: "c-done", state: "SUCCEEDED", expected: "FAILED" },
        { id: "c-failed", state: "FAILED", expected: "SUCCEEDED" },
      ],
      missing: [],
    });
  });

  it("accepts EXPIRED only for an ack that said not ok", () => {
    assert.equal(ackMatchesState(false, "EXPIRED"), true);
    assert.equal(ackMatchesState(true, "EXPIRED"), false);
    assert.equal(ackMatchesState(true, "SUCCEEDED"), true);
    assert.equal(ackMatchesState(false, "SUCCEEDED"), false);
  });

  it("gives up on a request the API never answers after requestTimeoutMs: the device is unreadable, not a hang", async () => {
    // undici waits up to 300 s for headers and as long again for a body: a stalled API held stop() for hours.
    const hanging = stalledFetch();
    const telemetry = httpTelemetryVerifier({ baseUrl, token: "t0ken", fetch: hanging, requestTimeoutMs: 50 });
    const commands = httpCommandVerifier({ baseUrl, token: "t0ken", fetch: hanging, requestTimeoutMs: 50 });
    const outcomes = await within(
      2000,
      Promise.all([telemetry("dev-1", [1]), commands("dev-1", [{ id: "c", ok: true }])]),
    );
    for (const outcome of outcomes) {
      assert.equal(outcome.status, "unavailable");
      assert.match(outcome.status === "unavailable" ? outcome.reason : "", /no answer within 50 ms/);
    }
  });

  it("says the check was impossible when the API refuses", async () => {
    const verify = httpTelemetryVerifier({ baseUrl, token: "wrong" });
    const outcome = await verify("dev-1", [1]);
    assert.equal(outcome.status, "unavailable");
    assert.match(outcome.status === "unavailable" ? outcome.reason : "", /401/);
  });
});
