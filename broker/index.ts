/**
 * The embedded MQTT broker (DESIGN section 2): listeners, device registry and auth, ACL, and the bridge between
 * MQTT sessions and the agent host.
 */
export { type Broker, type BrokerAddresses, createBroker, type SessionEndReason, startBroker } from "./broker.ts";
export { type Clock, systemClock } from "./clock.ts";
export { BrokerErrorCode, type BrokerErrorCodeValue } from "./errors.ts";
export type { BoundAddress } from "./listeners/socket-listener.ts";
export { parseProxyRange } from "./listeners/trusted-proxies.ts";
export type { AuthFailureReason, BrokerObserver, BrokerStats, BrokerTransportKind } from "./observer.ts";
export {
  BROKER_DEFAULTS,
  type BrokerLimits,
  type BrokerLogger,
  type BrokerOptions,
  type ProxyProtocolOptions,
  type TcpListenerOptions,
  type TlsListenerOptions,
  type WebSocketOptions,
} from "./options.ts";
export * from "./registry/index.ts";
