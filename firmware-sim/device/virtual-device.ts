/**
 * One simulated device: the firmware's connection loop (connect, subscribe, hello, replay, online; on loss, back off
 * and reconnect), its producers (telemetry, state reports, reasoning questions) and its reaction to down frames.
 * It owns no timers: every delayed action goes through the fleet's shared scheduler. Its producers, the encoding of
 * its up messages, the counting of its connections and its reconnect backoff are files of their own, which this one
 * wires to the connection.
 */
import type { Codec } from "../../codecs/codec.ts";
import type { UpChannel, UpFrames } from "../../codecs/frames.ts";
import { getCodec } from "../../codecs/index.ts";
import type { DeviceContext } from "../handlers/index.ts";
import { receiveDown } from "../handlers/receive.ts";
import { checkDeviceAtEnd } from "../invariants/device-checks.ts";
import { SeqRanges } from "../invariants/seq-ranges.ts";
import type { ViolationKind } from "../invariants/violations.ts";
import { type CloseReason, LeanConnection } from "../mqtt/lean-connection.ts";
import type { ScheduledTask } from "../scheduler.ts";
import { DeviceTopics } from "../wire.ts";
import { AliasRecovery } from "./alias-recovery.ts";
import { bookBufferLoss } from "./buffer-loss.ts";
import { CommandBook } from "./command-book.ts";
import { connectPacketFor } from "./connect-packet.ts";
import { ConnectionCounters } from "./connection-counters.ts";
import type { DeviceConfig, DeviceEnv } from "./device-env.ts";
import { Keepalive } from "./keepalive.ts";
import type { OutgoingKind } from "./outbox.ts";
import { Publisher } from "./publisher.ts";
import { ReasonAsker } from "./reason-asker.ts";
import { ReasonTracker } from "./reason-tracker.ts";
import { ReconnectBackoff } from "./reconnect-backoff.ts";
import { DeviceShadow } from "./shadow.ts";
import { TelemetryProducer } from "./telemetry-producer.ts";
import { UpEncoder } from "./up-encoder.ts";

/** Where a device is in its connection loop. */
export type DevicePhase = "off" | "connecting" | "subscribing" | "hello" | "online" | "backoff" | "stopped";

const SUBSCRIBE_PACKET_ID = 1;

export class VirtualDevice implements DeviceContext {
  readonly deviceId: string;
  readonly profile: DeviceConfig["profile"];
  readonly metrics: DeviceEnv["metrics"];
  readonly commands: CommandBook;
  readonly reasons: ReasonTracker;
  readonly shadow: DeviceShadow | undefined;
  readonly aliases: AliasRecovery;
  readonly #config: DeviceConfig;
  readonly #env: DeviceEnv;
  readonly #codec: Codec;
  readonly #publisher: Publisher;
  readonly #topics: DeviceTopics;
  readonly #up: UpEncoder;
  /** Telemetry seqs that got a PUBACK (the fleet reads them for the verifier). */
  readonly ackedSeqs = new SeqRanges();
  #phase: DevicePhase = "off";
  #connection: LeanConnection | undefined;
  #lastErrorCode: string | undefined;
  #everOnline = false;
  /** The latest connection (or attempt) came online: a drop of it is a loss to recover from, not a broker refusing. */
  #lastCameOnline = false;
  #producing = false;
  /** A refused subscription was reported as a violation already (once per device; every one is counted). */
  #refusalReported = false;
  #tasks: { drop?: ScheduledTask; connect?: ScheduledTask } = {};
  readonly #keepalive: Keepalive;
  readonly #telemetry: TelemetryProducer;
  readonly #asker: ReasonAsker | undefined;
  readonly #counters: ConnectionCounters;
  readonly #backoff: ReconnectBackoff;

  constructor(config: DeviceConfig, env: DeviceEnv) {
    this.#config = config;
    this.#env = env;
    this.deviceId = config.id;
    this.profile = config.profile;
    this.metrics = env.metrics;
    this.commands = config.commands ?? new CommandBook(env.behaviour.brokerSetsDup);
    this.reasons = new ReasonTracker(env.behaviour.brokerSetsDup);
    this.#codec = getCodec(config.codec);
    this.#publisher = new Publisher(
      env.behaviour,
      env.metrics,
      env.random.duplicates,
      () => this.nowMs(),
      (message) => bookBufferLoss(this, message),
    );
    this.#topics = new DeviceTopics(config.id);
    this.#up = new UpEncoder(this.#topics, config.codec, this.#codec);
    this.#keepalive = new Keepalive(
      env.scheduler,
      env.behaviour.keepaliveSec,
      () => this.#connection?.ping(),
      () => this.#connection?.destroy("keepalive-timeout"),
    );
    this.shadow = config.profile.hasShadow ? new DeviceShadow(config.profile.initialState()) : undefined;
    this.#telemetry = new TelemetryProducer(
      env,
      config,
      () => this.deviceNowMs(),
      (frame, seq) => this.#publisher.queue(this.#up.encode("telemetry", frame, "telemetry", seq)),
    );
    this.#asker = config.profile.asksReasoning
      ? new ReasonAsker(
          env.scheduler,
          env.behaviour,
          this.reasons,
          env.metrics,
          `${config.id}.${config.seqBase.toString(36)}`,
          config.profile.streams,
          () => this.nowMs(),
          (frame) => this.send("reason", frame, frame.id),
        )
      : undefined;
    this.#counters = new ConnectionCounters(env.metrics);
    this.#backoff = new ReconnectBackoff(env);
    this.aliases = new AliasRecovery(this.#publisher, env.metrics, () => this.#up.hello(config.profile));
  }

  get phase(): DevicePhase {
    return this.#phase;
  }

  get everOnline(): boolean {
    return this.#everOnline;
  }

  get isTwin(): boolean {
    return this.#config.twin;
  }

  /** Messages queued or in flight. */
  get pending(): number {
    return this.#publisher.pending;
  }

  /**
   * True when nothing is waiting to be sent or acknowledged and no connection attempt is under way (an attempt in
   * progress at stop is let finish, so a short run does not count a device still shaking hands as never connected).
   */
  get drained(): boolean {
    const midAttempt = this.#phase === "connecting" || this.#phase === "subscribing" || this.#phase === "hello";
    return !midAttempt && this.#publisher.pending === 0;
  }

  /** Powers the device on: it starts producing and connecting. */
  powerOn(): void {
    if (this.#phase !== "off") return;
    this.#producing = true;
    this.#telemetry.start();
    this.#connect();
  }

  /** Stops producing new messages (end of the run); what is queued still goes out. */
  stopProducing(): void {
    this.#producing = false;
    this.#telemetry.stop();
    this.#asker?.stop();
    this.#env.scheduler.cancel(this.#tasks.drop);
  }

  /**
   * Ends a backoff wait now (at the end of a run): what the device still owes (acks, reports, telemetry) can only
   * drain once it is connected, and a 30 s backoff would otherwise outlast the drain.
   */
  reconnectNow(): void {
    if (this.#phase !== "backoff") return;
    this.#env.scheduler.cancel(this.#tasks.connect);
    this.#connect();
  }

  /** Disconnects cleanly (DISCONNECT, so no last will) and stops reconnecting. */
  shutdown(): void {
    this.stopProducing();
    this.#phase = "stopped";
    for (const task of Object.values(this.#tasks)) this.#env.scheduler.cancel(task);
    this.#keepalive.stop();
    this.#connection?.disconnect("shutdown");
  }

  /**
   * True while waiting out the backoff after losing a connection that had come online (a network loss, a broker
   * restarting): the device connects again and may deliver what it owes then. False after an attempt that never came
   * online (refused, unreachable), which the next one would most likely repeat.
   */
  get reconnectingAfterLoss(): boolean {
    return this.#phase === "backoff" && this.#lastCameOnline;
  }

  /** True while a connection, or an attempt at one, is open. */
  get connectionOpen(): boolean {
    return this.#connection !== undefined && !this.#connection.closed;
  }

  /**
   * After `shutdown`: closes the connection from this side if the broker has not closed it. The DISCONNECT went out
   * and the socket is half-closed [MQTT-3.14.4-1], but a stalled broker (or one that never answered the CONNECT)
   * may never close its side, and an open socket would keep the process alive after the run.
   */
  closeNow(): void {
    this.#connection?.destroy("shutdown");
  }

  /** Drops the connection without DISCONNECT, as a network loss would (the broker publishes the last will). */
  dropConnection(reason = "network-drop"): void {
    if (!this.#connection || this.#connection.closed) return;
    this.metrics.counters.networkDrops++;
    this.#connection.destroy(reason);
  }

  /** Invariant checks at the end of a run. */
  finalChecks(): void {
    const end = {
      deviceId: this.deviceId,
      everOnline: this.#everOnline,
      twin: this.#config.twin,
      commands: this.commands,
      shadow: this.shadow,
    };
    checkDeviceAtEnd(end, (kind, message) => this.violation(kind, message));
  }

  // ---------- DeviceContext ----------

  nowMs(): number {
    return this.#env.clock.now();
  }

  deviceNowMs(): number | undefined {
    return this.#config.hasClock ? this.#env.clock.now() + this.#config.skewMs : undefined;
  }

  send<C extends UpChannel>(channel: C, frame: UpFrames[C], ref?: string): void {
    this.#publisher.queue(this.#up.encode(channel, frame, channel as OutgoingKind, ref));
  }

  violation(kind: ViolationKind, message: string): void {
    this.#env.violations.add({ kind, deviceId: this.deviceId, message, atMs: this.nowMs() });
  }

  reasonDone(): void {
    this.#asker?.answered();
  }

  // ---------- connection loop ----------

  #connect(): void {
    const env = this.#env;
    const b = env.behaviour;
    this.#phase = "connecting";
    this.#lastCameOnline = false;
    this.#counters.attempt();
    const target = { ...env.target, localAddress: env.localAddress(this.#backoff.attempt, this.#lastErrorCode) };
    this.#connection = new LeanConnection(
      target,
      connectPacketFor(this.#config, b),
      {
        onConnack: (sessionPresent, rc) => this.#onConnack(sessionPresent, rc),
        onPublish: (topic, payload, qos, id, dup) => this.#onPublish(topic, payload, qos, id, dup),
        onPuback: (id) => this.#onPuback(id),
        onSuback: (id, granted) => {
          if (id === SUBSCRIBE_PACKET_ID && this.#phase === "subscribing") this.#onSuback(granted);
        },
        onPingresp: () => this.#keepalive.pong(),
        onClose: (reason) => this.#onClose(reason),
        onHandlerError: (err) => env.handlerFailed(err),
      },
      env.socketFactory,
    );
    this.#tasks.connect = env.scheduler.after(b.connectTimeoutMs, () => {
      if (this.#phase === "connecting" || this.#phase === "subscribing" || this.#phase === "hello") {
        this.#connection?.destroy("connect-timeout");
      }
    });
  }

  #onConnack(sessionPresent: boolean, returnCode: number): void {
    if (!this.#counters.connack(returnCode)) {
      this.#connection?.destroy(`connack-${returnCode}`);
      return;
    }
    if (this.#connection) this.#publisher.attach(this.#connection);
    // A persistent session the broker kept still has the subscription; firmware saves the round trip.
    if (!this.#env.behaviour.cleanSession && sessionPresent) {
      this.#sendHello();
      return;
    }
    this.#phase = "subscribing";
    this.#connection?.subscribe(SUBSCRIBE_PACKET_ID, [this.#topics.down], 1);
  }

  /**
   * A granted QoS (0, 1 or 2) completes the subscription; anything else (0x80 [MQTT-3.9.3-2]) is a refusal. A device
   * deaf to its down topics would count itself online while no command or delta could ever reach it, so a refusal
   * fails the connection setup like a refused CONNACK: DISCONNECT, then the reconnect backoff (whose counter only a
   * stable connection resets, so a refusal that repeats is retried less and less often, up to the cap).
   */
  #onSuback(granted: readonly number[]): void {
    const code = granted[0];
    if (code === 0 || code === 1 || code === 2) {
      this.#sendHello();
      return;
    }
    this.metrics.counters.subscribeRefused++;
    if (!this.#refusalReported) {
      this.#refusalReported = true;
      const shown = code === undefined ? "no return code" : `0x${code.toString(16)}`;
      this.violation(
        "subscription-refused",
        `the broker refused ${this.#topics.down} (SUBACK ${shown}): no down frame could reach the device; it disconnects and reconnects with backoff (further refusals are counted in subscribeRefused)`,
      );
    }
    // Still "subscribing": the connect timeout closes the connection if the broker never closes its side.
    this.#connection?.disconnect("subscribe-refused");
  }

  #sendHello(): void {
    this.#phase = "hello";
    // The hello skips the buffer: it must be the first message of every connection.
    this.#publisher.sendFirst(this.#up.hello(this.profile));
  }

  #online(): void {
    const env = this.#env;
    this.#phase = "online";
    this.#everOnline = true;
    this.#lastCameOnline = true;
    // Online as the `online` event means it: subscribed and greeted, not merely accepted by a CONNACK.
    this.#counters.online();
    this.#backoff.cameOnline(() => this.#phase === "online");
    env.listener.online(this.deviceId);
    if (this.shadow) {
      // After any reconnect the bridge may have missed reports: report the whole state once.
      this.metrics.counters.stateReports++;
      this.#publisher.queue(this.#up.encode("state", this.shadow.fullReport(), "state", undefined));
    }
    this.#publisher.open();
    this.#keepalive.start();
    if (env.behaviour.networkDropMeanMs > 0 && this.#producing) {
      // Exponentially distributed time to the next network loss: drops form a Poisson process per device.
      const delay = -Math.log(1 - env.random.drops()) * env.behaviour.networkDropMeanMs;
      this.#tasks.drop = env.scheduler.after(delay, () => this.dropConnection());
    }
    if (this.#producing) this.#asker?.resume(env.random.reasoning() * env.behaviour.reasonIntervalMs);
  }

  #onPuback(messageId: number): void {
    const message = this.#publisher.onPuback(messageId);
    if (!message || this.aliases.acked(message)) return;
    const m = this.metrics;
    switch (message.kind) {
      case "hello":
        if (this.#phase === "hello") this.#online();
        return;
      case "telemetry":
        m.counters.telemetryAcked++;
        this.ackedSeqs.add(message.ref as number);
        return;
      case "state":
        this.shadow?.reportConfirmed();
        return;
      case "ack":
        this.commands.confirm(message.ref as string);
        return;
      case "reason":
        return;
    }
  }

  #onPublish(topic: string, payload: Buffer, qos: 0 | 1 | 2, messageId: number | undefined, dup: boolean): void {
    this.metrics.counters.downReceived++;
    try {
      receiveDown(this, this.#codec, this.#topics, topic, payload, { dup, packetId: messageId });
    } finally {
      // Acknowledge after handling, as firmware that has acted on the message would.
      if (qos === 1 && messageId !== undefined) this.#connection?.puback(messageId);
    }
  }

  #onClose(reason: CloseReason): void {
    const env = this.#env;
    this.#connection = undefined;
    this.#keepalive.stop();
    env.scheduler.cancel(this.#tasks.drop);
    env.scheduler.cancel(this.#tasks.connect);
    this.#backoff.closed();
    this.#counters.closed(reason);
    this.#lastErrorCode = reason.kind === "error" ? reason.code : undefined;
    this.aliases.connectionLost();
    this.#publisher.detach();
    if (this.#phase === "online")
      env.listener.offline(this.deviceId, reason.kind === "local" ? reason.reason : reason.kind);
    if (this.#phase === "stopped") return;
    this.#phase = "backoff";
    const delay = this.#backoff.nextDelayMs();
    this.#tasks.connect = env.scheduler.after(delay, () => {
      if (this.#phase === "backoff") this.#connect();
    });
  }
}
