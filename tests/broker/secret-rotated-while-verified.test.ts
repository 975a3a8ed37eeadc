/**
 * A CONNECT reads the device's secret hash, then verifies the secret against it on the thread pool (scrypt, tens of
 * ms). A rotation that lands in that window (`POST /api/devices/:id/secret`, with or without `endSessions=true`)
 * makes the secret being verified a former one: the CONNECT must be refused when its check ends, not become a session
 * that `endSessions` could not see (it ran before the session existed) and that nothing ends afterwards.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createDeviceRegistry, type DeviceRegistry } from "../../broker/index.ts";
import { connectDevice, endClient, startTestBroker, type TestBroker } from "./helpers.ts";

const cheap = { N: 1024, r: 8, p: 1 };

describe("a secret rotated while a CONNECT verifies it", () => {
  let dir: string;
  let real: DeviceRegistry;
  let tb: TestBroker;
  /** Runs once the next verification ended, before the CONNECT reads the record again. */
  let afterVerify: ((id: string) => Promise<void>) | undefined;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-rotated-"));
    real = createDeviceRegistry({ path: path.join(dir, "registry.db"), scrypt: cheap });
    const registry: DeviceRegistry = {
      ...real,
      async verify(id, given) {
        const verdict = await real.verify(id, given);
        const hook = afterVerify;
        afterVerify = undefined;
        await hook?.(id);
        return verdict;
      },
    };
    tb = await startTestBroker({ registry });
  });
  after(async () => {
    await tb.close();
    real.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function provision(id: string): Promise<string> {
    const added = await real.add(id, { codec: "json" });
    if (added.status !== "created") throw new Error(`could not add ${id}`);
    return added.secret;
  }

  /** The CONNACK code the CONNECT gets (0: accepted), and the client when it was. */
  function attempt(id: string, password: string) {
    return connectDevice(tb.url, { clientId: id, username: id, password }).then(
      (client) => ({ client, code: 0 }),
      (err: { code?: unknown }) => ({ client: undefined, code: err.code }),
    );
  }

  test("rotated with endSessions=true after the old secret verified: refused with CONNACK 4, never online", async () => {
    const oldSecret = await provision("leaked-1");
    let ended = -1;
    // What the API's POST /api/devices/leaked-1/secret?endSessions=true does, in its order.
    afterVerify = async (id) => {
      await real.rotateSecret(id);
      ended = tb.broker.endSessions(id, "revoked");
    };
    const failuresBefore = tb.broker.stats().authFailures["bad-credentials"] ?? 0;
    const result = await attempt("leaked-1", oldSecret);
    try {
      assert.equal(ended, 0, "the rotation found no session to end: the CONNECT had none yet");
      assert.equal(result.code, 4, "the old secret is refused as a wrong one is");
      assert.equal(tb.broker.isOnline("leaked-1"), false);
      assert.equal(tb.host.opens("leaked-1").length, 0, "its agent never heard of it");
      assert.equal(tb.broker.stats().authFailures["bad-credentials"], failuresBefore + 1);
      assert.ok(
        tb.logger.lines.some(
          (l) => l.level === "warn" && l.obj.device === "leaked-1" && l.obj.code === "BRIDGE_ERR_AUTH_FAILED",
        ),
      );
    } finally {
      if (result.client !== undefined) await endClient(result.client, true);
    }
  });

  test("rotated without endSessions after the old secret verified: the new CONNECT is refused all the same", async () => {
    const oldSecret = await provision("routine-1");
    afterVerify = async (id) => {
      await real.rotateSecret(id);
    };
    const result = await attempt("routine-1", oldSecret);
    try {
      assert.equal(result.code, 4, "a rotation keeps only the sessions already open");
      assert.equal(tb.broker.isOnline("routine-1"), false);
    } finally {
      if (result.client !== undefined) await endClient(result.client, true);
    }
  });

  test("a change that leaves the secret as it was (a hello's codec, firmware) does not refuse the CONNECT", async () => {
    const secret = await provision("steady-1");
    afterVerify = async (id) => {
      real.setCodec(id, "cbor");
      real.setFirmware(id, "2.0.0");
    };
    const result = await attempt("steady-1", secret);
    try {
      assert.equal(result.code, 0);
      assert.equal(tb.broker.isOnline("steady-1"), true);
    } finally {
      if (result.client !== undefined) await endClient(result.client, true);
    }
  });
});
