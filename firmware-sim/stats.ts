/**
 * Fleet-wide counters. Devices increment plain numeric fields of one shared object (no per-device stats objects, no
 * events per message), which keeps ten thousand devices cheap.
 */
import { LatencyHistogram, type LatencySummary } from "./latency.ts";

/** Counters, all monotonic over a run. */
export interface FleetCounters {
  /** TCP/TLS connection attempts. */
  connectAttempts: number;
  /** CONNACKs with return code 0. */
  connects: number;
  /** CONNACKs refusing the device (bad credentials, not authorised, server unavailable). */
  connectRefused: number;
  /** Attempts that failed before a CONNACK: socket errors (refused, reset, TLS), connect timeouts, broker closes. */
  connectErrors: number;
  /**
   * SUBACKs refusing the device's down filter (0x80: an ACL, a subscription cap). A failed connection setup: the
   * device disconnects and retries with backoff.
   */
  subscribeRefused: number;
  /**
   * Accepted CONNACKs of devices that had been online before (after a drop, a kick, a takeover). A device retrying a
   * setup that never came online (its attempts failed before a CONNACK, its subscription was refused, its hello went
   * unacknowledged) is not reconnecting.
   */
  reconnects: number;
  /** Connections that ended, for any reason. */
  disconnects: number;
  /** Connections the broker closed (takeover, kick, shutdown). */
  serverCloses: number;
  /** Connections the simulator dropped on purpose without DISCONNECT (network loss). */
  networkDrops: number;
  /** Up messages published (first transmissions). */
  published: number;
  /** PUBACKs received for up messages. */
  acked: number;
  /** Publishes retransmitted with DUP after a reconnect. */
  retransmitted: number;
  /** Deliberate duplicate publishes (same packet id, DUP set). */
  duplicatesSent: number;
  /** Messages that went through the offline buffer. */
  buffered: number;
  /** Messages dropped from a full offline buffer (oldest first). */
  bufferDropped: number;
  telemetrySent: number;
  telemetryAcked: number;
  /** Hellos sent again on `BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN` (the agent lost the metric alias table). */
  aliasHellos: number;
  /** Telemetry frames refused with `BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN` and queued again after the hello. */
  telemetryResent: number;
  /** Down messages received. */
  downReceived: number;
  identityFrames: number;
  /** `down/state` frames of the shadow: desired-state deltas and full desired states. */
  desiredFrames: number;
  /** `down/state` frames that were the agent's own state (the runtime's `setState` broadcast), not desired state. */
  agentStateFrames: number;
  stateReports: number;
  staleStateErrors: number;
  commandsReceived: number;
  commandsRedelivered: number;
  acksSent: number;
  /** Command acks dropped from a full offline buffer (also in `bufferDropped`). */
  acksDropped: number;
  /**
   * Commands the device's record forgot unconfirmed: every ack of them was dropped from the full offline buffer, and
   * `MAX_DROPPED_ACK_COMMANDS` newer such ones were kept. A redelivery of one is run again as a new command.
   */
  commandsForgotten: number;
  rpcResults: number;
  reasonAsked: number;
  reasonChunks: number;
  reasonFinished: number;
  reasonErrors: number;
  reasonTimedOut: number;
  errorFrames: number;
  /** Down messages on a channel the protocol does not define. */
  unknownDownChannel: number;
  /** Device tasks and packet handlers that threw: bugs of the simulator, not of the system under test. */
  simulatorErrors: number;
}

/** A zeroed counter set. */
export function createCounters(): FleetCounters {
  return {
    connectAttempts: 0,
    connects: 0,
    connectRefused: 0,
    connectErrors: 0,
    subscribeRefused: 0,
    reconnects: 0,
    disconnects: 0,
    serverCloses: 0,
    networkDrops: 0,
    published: 0,
    acked: 0,
    retransmitted: 0,
    duplicatesSent: 0,
    buffered: 0,
    bufferDropped: 0,
    telemetrySent: 0,
    telemetryAcked: 0,
    aliasHellos: 0,
    telemetryResent: 0,
    downReceived: 0,
    identityFrames: 0,
    desiredFrames: 0,
    agentStateFrames: 0,
    stateReports: 0,
    staleStateErrors: 0,
    commandsReceived: 0,
    commandsRedelivered: 0,
    acksSent: 0,
    acksDropped: 0,
    commandsForgotten: 0,
    rpcResults: 0,
    reasonAsked: 0,
    reasonChunks: 0,
    reasonFinished: 0,
    reasonErrors: 0,
    reasonTimedOut: 0,
    errorFrames: 0,
    unknownDownChannel: 0,
    simulatorErrors: 0,
  };
}

/** Everything measured in a run, shared by the devices. */
export class FleetMetrics {
  readonly counters: FleetCounters = createCounters();
  /** Publish to PUBACK, ms. */
  readonly pubackLatency = new LatencyHistogram();
  /** Reasoning request to first chunk, ms. */
  readonly reasonFirstChunk = new LatencyHistogram();
  /** Reasoning request to final frame, ms. */
  readonly reasonTotal = new LatencyHistogram();
  /** `down/error` frames by code. */
  readonly errorCodes = new Map<string, number>();
  /** CONNACK refusals by return code. */
  readonly refusalCodes = new Map<number, number>();
  /** Devices currently online: connected, subscribed and hello acknowledged (the `online` event), not yet closed. */
  online = 0;
}

/** A point-in-time view of a running fleet. */
export interface FleetStats {
  /** Ms since `start()`. */
  elapsedMs: number;
  devices: number;
  /** Devices powered on so far (the connection ramp). */
  started: number;
  online: number;
  counters: FleetCounters;
  pubackLatency: LatencySummary;
  reasonFirstChunk: LatencySummary;
  reasonTotal: LatencySummary;
  errorCodes: Record<string, number>;
  refusalCodes: Record<string, number>;
  violations: number;
}
