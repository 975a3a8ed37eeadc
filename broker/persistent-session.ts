/**
 * What aedes' store keeps of a device's persistent session (clean: false) between its connections, by client id: its
 * subscriptions (restored at its next CONNECT, whose CONNACK then says sessionPresent), its offline queue of QoS 1
 * frames, the QoS 2 messages it sent that wait for their PUBREL, and its last will. A clean session's CONNECT drops all
 * of it (aedes' handlers/connect.js); so does the removal of the device, since a device provisioned later under the
 * same id may connect with clean: false and must find nothing of the removed one there.
 */
import type { OutgoingStore } from "./offline-down-queue.ts";

/** The calls of aedes' persistence (aedes-persistence) that drop a client's session. */
export interface SessionStore extends OutgoingStore {
  cleanSubscriptions(client: { id: string }): Promise<void>;
  cleanIncoming(client: { id: string }): Promise<void>;
  delWill(client: { id: string }): Promise<unknown>;
}

/** Drops the device's persistent session from aedes' store, as a clean session's CONNECT would. */
export async function clearPersistentSession(store: SessionStore, deviceId: string): Promise<void> {
  const client = { id: deviceId };
  await store.cleanSubscriptions(client);
  await store.delWill(client);
  await store.cleanIncoming(client);
  // aedes' own way of emptying a client's queue (Client#emptyOutgoingQueue): a snapshot, then each packet by its id.
  const queued: Array<{ messageId?: number }> = [];
  for await (const packet of store.outgoingStream(client)) queued.push(packet);
  for (const packet of queued) await store.outgoingClearMessageId(client, packet);
}
