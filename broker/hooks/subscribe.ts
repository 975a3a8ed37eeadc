/** SUBSCRIBE and forwarding: a session subscribes to, and is forwarded, only its own device's down topics. */
import type { AedesOptions, Client } from "aedes";
import { isUpTopic, maySubscribe } from "../acl.ts";
import { BrokerErrorCode } from "../errors.ts";
import { ThrottledWarning } from "../throttled-warning.ts";
import { AclWarnings } from "./acl-warnings.ts";
import type { HookContext } from "./context.ts";

type AuthorizeSubscribe = NonNullable<AedesOptions["authorizeSubscribe"]>;
type AuthorizeForward = NonNullable<AedesOptions["authorizeForward"]>;

export function createAuthorizeSubscribe(ctx: HookContext): AuthorizeSubscribe {
  const { hub, connections } = ctx;
  const { logger, limits, clock } = ctx.opts;
  // A device sending filters by the thousand must not write a log line for each.
  const overLimit = new ThrottledWarning(
    logger,
    clock,
    "subscription limit reached; further filters refused (SUBACK 0x80)",
  );
  const aclWarnings = new AclWarnings(logger, clock);
  /**
   * aedes stores a persistent session's SUBSCRIBE as the device sent it, every filter of the packet as soon as one of
   * them is granted, the refused ones included (aedes 1.2, storeSubscriptions), and restores them all at the next
   * CONNECT. A refused filter kept there made aedes queue for the device every QoS 1 or 2 message that matched it
   * (`devices/+/up/#`: each up message of the fleet), for good while the device stayed online, since no delivery ever
   * cleared them. It is dropped once the packet's stores are done (on the loop's check phase, after them).
   */
  const forget = (client: Client, topic: string): void => {
    setImmediate(() => {
      ctx.forgetSubscriptions(client, [topic]).catch((err: unknown) => {
        logger.error({ err, device: client.id }, "dropping a refused subscription failed");
      });
    });
  };
  return (client, subscription, callback) => {
    const connection = connections.get(client);
    if (!connection || connection.closed || !maySubscribe(connection.deviceId, subscription.topic)) {
      hub.aclDenied("subscribe");
      aclWarnings.subscribeDenied(client.id, String(subscription.topic));
      if (!client.clean) forget(client, subscription.topic);
      // A null subscription is answered with SUBACK return code 0x80 (failure); the session stays up.
      return callback(null, null);
    }
    // Each filter is kept by aedes (its subscription trie, and its store for a persistent session) and by the session's
    // table: without a bound, a device subscribing to ever new filters under its own down topics grew them for good.
    const filters = connection.subscriptions;
    if (!filters.has(subscription.topic) && filters.size >= limits.maxSubscriptionsPerDevice) {
      hub.limitBreach(BrokerErrorCode.subscriptionLimit);
      overLimit.note({ device: connection.deviceId, max: limits.maxSubscriptionsPerDevice });
      if (!client.clean) forget(client, subscription.topic);
      return callback(null, null);
    }
    const qos: 0 | 1 = subscription.qos >= 1 ? 1 : 0;
    connection.subscriptions.set(subscription.topic, qos);
    callback(null, { ...subscription, qos });
  };
}

/** Defence in depth: whatever gets published, a session only ever receives its own device's down topics. */
export const authorizeForward: AuthorizeForward = (client, packet) => {
  if (isUpTopic(packet.topic)) return null;
  return packet.topic.startsWith(`devices/${client.id}/down/`) ? packet : null;
};
