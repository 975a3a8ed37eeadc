/**
 * The test broker's `host` is the host the broker serves: a test that passes its own host and asserts on `tb.host`
 * must see that host's calls, not those of an unused RecordingHost.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { connectDevice, endClient, RecordingHost, startTestBroker } from "./helpers.ts";

test("startTestBroker({ host }) returns that host as tb.host", async () => {
  const host = new RecordingHost();
  const tb = await startTestBroker({ host, anonymous: true });
  try {
    assert.equal(tb.host, host);
    const client = await connectDevice(tb.url, { clientId: "own-host" });
    await endClient(client);
    await tb.host.waitFor(() => tb.host.closes("own-host").length === 1);
  } finally {
    await tb.close();
  }
});

test("without a host, tb.host is the RecordingHost the broker serves", async () => {
  const tb = await startTestBroker({ anonymous: true });
  try {
    assert.ok(tb.host instanceof RecordingHost);
    const client = await connectDevice(tb.url, { clientId: "default-host" });
    await endClient(client);
    await tb.host.waitFor(() => tb.host.opens("default-host").length === 1);
  } finally {
    await tb.close();
  }
});
