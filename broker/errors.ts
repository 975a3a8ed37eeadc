/**
 * Stable error codes the broker raises, sends to devices in `down/error` frames, or reports to its observer.
 * The table with meanings lives in docs/errors.md under "Broker".
 */
export const BrokerErrorCode = {
  /** An option given to createBroker or createDeviceRegistry is invalid; `details.field` names it. */
  config: "BRIDGE_ERR_BROKER_CONFIG",
  /** A listener could not bind its address; `cause` holds the system error. */
  listen: "BRIDGE_ERR_BROKER_LISTEN",
  /** The broker was already closed. */
  closed: "BRIDGE_ERR_BROKER_CLOSED",
  /** Username or password wrong or missing (CONNACK 4). */
  authFailed: "BRIDGE_ERR_AUTH_FAILED",
  /** No such device in the registry and anonymous mode is off (CONNACK 4, as a wrong secret). */
  authUnknownDevice: "BRIDGE_ERR_AUTH_UNKNOWN_DEVICE",
  /** Client id is not a valid device id, or differs from the username (CONNACK 2). */
  authClientId: "BRIDGE_ERR_AUTH_CLIENT_ID",
  /** The last will targets a topic the device may not publish to (CONNACK 5). */
  authWillDenied: "BRIDGE_ERR_AUTH_WILL_DENIED",
  /** Too many CONNECTs are waiting for a secret verification (CONNACK 3); the device should retry later. */
  authBusy: "BRIDGE_ERR_AUTH_BUSY",
  /** The source address failed authentication too often and is refused for a while (CONNACK 5). */
  authBlocked: "BRIDGE_ERR_AUTH_BLOCKED",
  /** Publish or subscribe outside the device's own `devices/{id}/` namespace. */
  aclDenied: "BRIDGE_ERR_ACL_DENIED",
  /** An up topic inside the device's namespace that is not `devices/{id}/up/{channel}[/{codec}]`. */
  topicInvalid: "BRIDGE_ERR_TOPIC_INVALID",
  /** Payload larger than `limits.maxPayloadBytes`. */
  frameTooLarge: "BRIDGE_ERR_FRAME_TOO_LARGE",
  /** An MQTT packet announced more than `limits.maxPayloadBytes` + 64 KiB: cut before its body is buffered. */
  packetTooLarge: "BRIDGE_ERR_PACKET_TOO_LARGE",
  /**
   * A client sent what MQTT 3.1.1 forbids a client to, seen in a fixed header before aedes parses it: a packet type
   * only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP, [MQTT-2.2.1]) or a remaining length of more than four
   * bytes ([MQTT-2.2.3]). The connection is cut.
   */
  protocolViolation: "BRIDGE_ERR_PROTOCOL_VIOLATION",
  /** The device sends faster than `limits.messagesPerSecond` allows. */
  rateLimited: "BRIDGE_ERR_RATE_LIMITED",
  /**
   * More up messages in flight for one device than `limits.maxInflightPerDevice`. A safety net: the broker stops
   * reading a session before that (read-pacer.ts).
   */
  inflightLimit: "BRIDGE_ERR_INFLIGHT_LIMIT",
  /** A SUBSCRIBE past `limits.maxSubscriptionsPerDevice` filters of one session: SUBACK 0x80 for those filters. */
  subscriptionLimit: "BRIDGE_ERR_SUBSCRIPTION_LIMIT",
  /**
   * A down frame refused because its device's queue held `MAX_QUEUED_DOWN_PER_DEVICE` frames already: frames waiting
   * for a persistent session that does not acknowledge, or its offline queue. Dropped, not an error of the session.
   */
  downQueueFull: "BRIDGE_ERR_DOWN_QUEUE_FULL",
  /** `limits.maxConnections` devices are connected already (CONNACK 3). */
  connectionLimit: "BRIDGE_ERR_CONNECTION_LIMIT",
  /**
   * A socket came while its listener held its most sockets: closed as it arrived (TCP, TLS), or its MQTT over
   * WebSocket upgrade refused with HTTP 503.
   */
  socketLimit: "BRIDGE_ERR_SOCKET_LIMIT",
  /**
   * A connection to a listener with `proxyProtocol` from a trusted balancer did not start with a valid PROXY protocol
   * header (none, malformed, over its size bound, or not complete within `headerTimeoutMs`): closed before any MQTT.
   */
  proxyHeader: "BRIDGE_ERR_PROXY_HEADER",
  /** A connection to a listener with `proxyProtocol` came from outside its `trustedSources`: closed at once. */
  proxyUntrusted: "BRIDGE_ERR_PROXY_UNTRUSTED",
  /** The agent host refused or failed to open the connection (CONNACK 3). */
  openFailed: "BRIDGE_ERR_OPEN_FAILED",
  /** The agent host threw while taking an event: a fault on the server side. */
  hostFault: "BRIDGE_ERR_HOST_FAULT",
  /** The device registry database failed. */
  registry: "BRIDGE_ERR_REGISTRY",
  /** A device id that breaks the device id rule (codecs/device-id.ts). */
  deviceIdInvalid: "BRIDGE_ERR_DEVICE_ID_INVALID",
} as const;

export type BrokerErrorCodeValue = (typeof BrokerErrorCode)[keyof typeof BrokerErrorCode];
