/**
 * A takeover opens the new session only once the old session's down frames are settled (the QoS 1 ones of a persistent
 * session written to the device's offline queue in aedes' store): aedes reads that queue once, right after the new
 * session's CONNACK, and a frame written after that would wait for yet another session of the device. Both the
 * takeover and the old session's own end ask for that; only the first acts.
 */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import type { Client } from "aedes";
import type { ConnectionTransport } from "../../agents/host.ts";
import { DeviceConnection } from "../../broker/connection.ts";
import { ObserverHub } from "../../broker/observer.ts";
import { OfflineDownQueue } from "../../broker/offline-down-queue.ts";
import type { SessionStore } from "../../broker/persistent-session.ts";
import { silentLogger } from "../../broker/options.ts";
import { SessionManager } from "../../broker/sessions.ts";
import type { TokenBucket } from "../../broker/token-bucket.ts";
import { createDownSender } from "../../broker/transport.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { RecordingHost } from "./helpers.ts";

/** A persistent session of `deviceId` over a client that closes at once. */
function session(deviceId: string, connectionId: string): DeviceConnection {
  const client = {
    closed: false,
    conn: new PassThrough(),
    close(done?: () => void) {
      this.closed = true;
      done?.();
    },
  };
  return new DeviceConnection(
    {
      connectionId,
      deviceId,
      transport: "tcp",
      remoteAddress: "127.0.0.1",
      registryCodec: "json",
      defaultCodec: "cbor",
      shared: { hello: undefined },
      client: client as unknown as Client,
      clean: false,
      registered: true,
    },
    {} as TokenBucket,
  );
}

const transport = {} as ConnectionTransport;

test("a takeover opens the new session once the old one's down frames are in the device's offline queue", async () => {
  const host = new RecordingHost();
  const settledSessions: string[] = [];
  /** The sessions the opening one took over, as the offline queue hears of them (their counters may still number). */
  const takenOver: string[] = [];
  let write!: () => void;
  /** The device's offline queue being written; set by the first settle, as a real write would be. */
  let writing: Promise<void> | undefined;
  const sessions = new SessionManager(host, new ObserverHub({}), silentLogger, new ManualClock(), () => {}, {
    settle: (connection) => {
      settledSessions.push(connection.connectionId);
      writing ??= new Promise<void>((resolve) => {
        write = resolve;
      });
      return writing;
    },
    settled: () => writing ?? Promise.resolve(),
    queued: (_connection, earlier) => {
      takenOver.push(...earlier.map((c) => c.connectionId));
      return (writing ?? Promise.resolve()).then(() => 0);
    },
  });
  const old = session("dev-1", "old");
  assert.equal((await sessions.open(old, transport)).status, "committed");

  const opening = sessions.open(session("dev-1", "new"), transport);
  await host.waitFor(() => host.closes("dev-1").length === 1);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(settledSessions, ["old"], "the old session's frames are settled as it is taken over");
  assert.equal(old.closed, true);
  assert.equal(host.opens("dev-1").length, 1, "the new session waits for the old one's frames to be written");

  write();
  assert.equal((await opening).status, "committed");
  assert.deepEqual(
    host.events.map((e) => `${e.type}:${e.connectionId}`),
    ["open:old", "close:old", "open:new"],
  );
  assert.deepEqual(takenOver, ["old"]);
});

test("an ended session's frames are settled once: a removed device's queue is not emptied again later", async () => {
  const cleared: string[] = [];
  const store: SessionStore = {
    cleanSubscriptions: () => Promise.resolve(),
    cleanIncoming: () => Promise.resolve(),
    delWill: () => Promise.resolve(),
    outgoingEnqueue: () => Promise.resolve(),
    async *outgoingStream() {
      yield { messageId: 7 };
    },
    outgoingClearMessageId: (client) => {
      cleared.push(client.id);
      return Promise.resolve();
    },
  };
  const hub = new ObserverHub({});
  const clock = new ManualClock();
  const stamp = () => ({ brokerId: "b", brokerCounter: 1 });
  const offline = new OfflineDownQueue(() => store, stamp, hub, silentLogger, clock);
  const sender = createDownSender(hub, silentLogger, clock, 0, offline, 20);
  const removed = session("dev-2", "removed");
  removed.markClosing("removed");
  removed.closed = true;
  // The takeover by the device's next session settles it first; its own end asks again later.
  await sender.discard(removed);
  assert.deepEqual(cleared, ["dev-2"]);
  await sender.discard(removed);
  assert.deepEqual(cleared, ["dev-2"], "the new session's frames stay in the queue");
});
