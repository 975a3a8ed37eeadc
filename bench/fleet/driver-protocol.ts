/**
 * The line protocol between the benchmark (parent) and its load-generator process: one JSON command per stdin line,
 * one JSON reply per stdout line, strictly in turn. The load generator runs in its own process so that its CPU is
 * never counted as the server's and its event loop never delays the server's.
 */

/** Connects `count` more devices (ids `{idPrefix}{startIndex + i}`), along a ramp. */
export interface ConnectCommand {
  op: "connect";
  host: string;
  port: number;
  idPrefix: string;
  startIndex: number;
  count: number;
  /** Passwords by device index (username = client id); absent connects anonymously. */
  secrets?: string[];
  /** CONNECTs sent per second, at most. */
  connectRatePerSec: number;
  /**
   * CONNECTs awaiting their CONNACK, at most: a server that creates an agent per connection accepts devices more
   * slowly than any ramp, and a storm beyond it would only measure its connect timeout.
   */
  maxPendingConnects: number;
  /** Source addresses, round-robin per device (one address has about 28,000 ephemeral ports). */
  localAddresses?: string[];
  /** MQTT keepalive; 0 because the lean client has no timers and idle devices must not be dropped. */
  keepaliveSec: number;
  /** Longest wait for every CONNACK, ms. */
  timeoutMs: number;
}

/** Offers `ratePerSec` QoS 1 telemetry messages per second, spread round-robin over every connected device. */
export interface RunCommand {
  op: "run";
  ratePerSec: number;
  durationMs: number;
  /** Unacknowledged messages per device; a due message beyond it waits in that device's backlog. */
  windowPerDevice: number;
  /** After the run, the longest wait for outstanding PUBACKs, ms. */
  drainMs: number;
  /** Return the seq of every acknowledged message per device (the crash check). */
  recordSeqs: boolean;
}

export interface CloseCommand {
  op: "close";
}

export type DriverCommand = ConnectCommand | RunCommand | CloseCommand;

export interface ConnectReply {
  op: "connect";
  connected: number;
  failed: number;
  /** Devices connected now, in total. */
  online: number;
  elapsedMs: number;
  firstError?: string;
}

export interface RunReply {
  op: "run";
  offeredPerSec: number;
  generated: number;
  sent: number;
  /** PUBACKs received during the run window. */
  ackedInWindow: number;
  /** PUBACKs received in all, the drain included. */
  acked: number;
  ackedPerSec: number;
  /** Due messages never sent (device backlog at the end, or its connection was gone). */
  unsent: number;
  /** Sent but never acknowledged (connection lost, or the drain timed out). */
  unacked: number;
  disconnects: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  ackedSeqs?: Record<string, number[]>;
}

export interface CloseReply {
  op: "close";
}

export type DriverReply = ConnectReply | RunReply | CloseReply | { op: "error"; message: string };
