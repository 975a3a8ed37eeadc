/**
 * One simulated device: the firmware's connection loop (connect, subscribe, hello, replay, online; on loss, back off
 * and reconnect), its producers (telemetry, state reports, reasoning questions) and its reaction to down frames.
 * It owns no timers: every delayed action goes through the fleet's shared scheduler.
 */
import type { Codec } from "../../codecs/codec.ts";
import type { UpChannel, UpFrames } from "../../codecs/frames.ts";
import { getCodec } from "../../codecs/index.ts";
import { backoffDelayMs } from "../backoff.ts";
import type { DeviceContext } from "../handlers/index.ts";
import { receiveDown } from "../handlers/receive.ts";
import { checkDeviceAtEnd } from "../invariants/device-checks.ts";
import { SeqRanges } from "../invariants/seq-ranges.ts";
import type { ViolationKind } from "../invariants/violations.ts";
import { type CloseReason, LeanConnection } from "../mqtt/lean-connection.ts";
import { telemetryReadings } from "../profiles/profile.ts";
import type { ScheduledTask } from "../scheduler.ts";
import { DeviceTopics } from "../wire.ts";
import { CommandBook } from "./command-book.ts";
import { connectPacketFor } from "./connect-packet.ts";
import type { DeviceConfig, DeviceEnv } from "./device-env.ts";
import { Keepalive } from "./keepalive.ts";
import type { Outgoing, OutgoingKind } from "./outbox.ts";
import { Publisher } from "./publisher.ts";
import { ReasonAsker } from "./reason-asker.ts";
import { ReasonTracker } from "./reason-tracker.ts";
import { DeviceShadow } from "./shadow.ts";

/** Where a device is in its connection loop. */
export type DevicePhase = "off" | "connecting" | "subscribing" | "hello" | "online" | "backoff" | "stopped";

const SUBSCRIBE_PACKET_ID = 1;

export class VirtualDevice implements DeviceContext {
  readonly deviceId: string;
  readonly profile: DeviceConfig["profile"];
  readonly metrics: DeviceEnv["metrics"];
  readonly commands: CommandBook;
  readonly reasons = new ReasonTracker();
  readonly shadow: DeviceShadow | undefined;
  readonly #config: DeviceConfig;
  readonly #env: DeviceEnv;
  readonly #codec: Codec;
  readonly #publisher: Publisher;
  readonly #topics: DeviceTopics;
  /** Telemetry seqs that got a PUBACK (the fleet reads them for the verifier). */
  readonly ackedSeqs = new SeqRanges();
  #phase: DevicePhase = "off";
  #connection: LeanConnection | undefined;
  #attempt = 0;
  #lastErrorCode: string | undefined;
  #everOnline = false;
  #producing = false;
  #telemetryCount = 0;
  /** A CONNACK accepted the current connection. */
  #sessionUp = false;
  /** A CONNACK accepted an earlier connection of this device: the next accepted one is a reconnect. */
  #acceptedBefore = false;
  /** This connection counts in `metrics.online` (from the hello's PUBACK to its close). */
  #countedOnline = false;
  /** A refused subscription was reported as a violation already (once per device; every one is counted). */
  #refusalReported = false;
  #tasks: { telemetry?: ScheduledTask; drop?: ScheduledTask; connect?: ScheduledTask; stable?: ScheduledTask } = {};
  readonly #keepalive: Keepalive;
  readonly #asker: ReasonAsker | undefined;

  constructor(config: DeviceConfig, env: DeviceEnv) {
    this.#config = config;
    this.#env = env;
    this.deviceId = config.id;
    this.profile = config.profile;
    this.metrics = env.metrics;
    this.commands = config.commands ?? new CommandBook();
    this.#codec = getCodec(config.codec);
    this.#publisher = new Publisher(
      env.behaviour,
      env.metrics,
      env.random,
      () => this.nowMs(),
      (message) => {
        if (message.kind === "state") this.shadow?.reportLost();
      },
    );
    this.#topics = new DeviceTopics(config.id);
    this.#keepalive = new Keepalive(
      env.scheduler,
      env.behaviour.keepaliveSec,
      () => this.#connection?.ping(),
      () => this.#connection?.destroy("keepalive-timeout"),
    );
    this.shadow = config.profile.hasShadow ? new DeviceShadow(config.profile.initialState()) : undefined;
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
    const interval = this.#env.behaviour.telemetryIntervalMs;
    // A random phase spreads the fleet's publishes evenly over the interval instead of in lockstep bursts.
    if (interval > 0)
      this.#tasks.telemetry = this.#env.scheduler.after(this.#env.random() * interval, () => this.#telemetryTick());
    this.#connect();
  }

  /** Stops producing new messages (end of the run); what is queued still goes out. */
  stopProducing(): void {
    this.#producing = false;
    this.#env.scheduler.cancel(this.#tasks.telemetry);
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
    this.#publisher.queue(this.#encode(channel, frame, channel as OutgoingKind, ref));
  }

  violation(kind: ViolationKind, message: string): void {
    this.#env.violations.add({ kind, deviceId: this.deviceId, message, atMs: this.nowMs() });
  }

  reasonDone(): void {
    this.#asker?.answered();
  }

  // ---------- producers ----------

  #telemetryTick(): void {
    if (!this.#producing) return;
    const interval = this.#env.behaviour.telemetryIntervalMs;
    this.#tasks.telemetry = this.#env.scheduler.after(interval, () => this.#telemetryTick());
    const seq = this.#config.seqBase + this.#telemetryCount++;
    const ts = this.deviceNowMs();
    const readings = { seq, ...this.profile.readings(this.#env.random) };
    this.metrics.counters.telemetrySent++;
    this.#publisher.queue(
      this.#encode(
        "telemetry",
        { ...(ts === undefined ? {} : { ts }), ...telemetryReadings(this.profile, readings) },
        "telemetry",
        seq,
      ),
    );
  }

  #encode<C extends UpChannel>(
    channel: C,
    frame: UpFrames[C],
    kind: OutgoingKind,
    ref: number | string | undefined,
  ): Outgoing {
    // The hello names its codec in the topic: the bridge cannot know the codec before it has read the hello.
    const topic = channel === "hello" ? this.#topics.up(channel, this.#config.codec) : this.#topics.up(channel);
    return { channel, topic, payload: this.#codec.encodeUp(channel, frame), kind, ref, dup: false, sentMs: 0 };
  }

  // ---------- connection loop ----------

  #connect(): void {
    const env = this.#env;
    const b = env.behaviour;
    this.#phase = "connecting";
    this.metrics.counters.connectAttempts++;
    const target = { ...env.target, localAddress: env.localAddress(this.#attempt, this.#lastErrorCode) };
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
    const m = this.metrics;
    if (returnCode !== 0) {
      m.counters.connectRefused++;
      m.refusalCodes.set(returnCode, (m.refusalCodes.get(returnCode) ?? 0) + 1);
      this.#connection?.destroy(`connack-${returnCode}`);
      return;
    }
    m.counters.connects++;
    if (this.#acceptedBefore) m.counters.reconnects++;
    this.#acceptedBefore = true;
    this.#sessionUp = true;
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
    const p = this.profile;
    const hello: UpFrames["hello"] = { fw: p.firmware, codec: this.#config.codec, sync: true, stream: p.streams };
    if (p.maxFrameBytes !== undefined) hello.maxFrame = p.maxFrameBytes;
    // Every hello carries the table: the bridge may have lost it (new gateway, wiped data) since the last one.
    if (p.metricAliases !== undefined && p.metricAliases.length > 0) hello.metrics = [...p.metricAliases];
    const message = this.#encode("hello", hello, "hello", undefined);
    // The hello skips the buffer: it must be the first message of every connection.
    this.#publisher.sendFirst(message);
  }

  #online(): void {
    const env = this.#env;
    this.#phase = "online";
    this.#everOnline = true;
    // Online as the `online` event means it: subscribed and greeted, not merely accepted by a CONNACK.
    this.metrics.online++;
    this.#countedOnline = true;
    this.#resetBackoffWhenStable();
    env.listener.online(this.deviceId);
    if (this.shadow) {
      // After any reconnect the bridge may have missed reports: report the whole state once.
      this.metrics.counters.stateReports++;
      this.#publisher.queue(this.#encode("state", this.shadow.fullReport(), "state", undefined));
    }
    this.#publisher.open();
    this.#keepalive.start();
    if (env.behaviour.networkDropMeanMs > 0 && this.#producing) {
      // Exponentially distributed time to the next network loss: drops form a Poisson process per device.
      const delay = -Math.log(1 - env.random()) * env.behaviour.networkDropMeanMs;
      this.#tasks.drop = env.scheduler.after(delay, () => this.dropConnection());
    }
    if (this.#producing) this.#asker?.resume(env.random() * env.behaviour.reasonIntervalMs);
  }

  /**
   * The retry counter goes back to 0 only once this connection has stayed up `stableConnectionMs`: a broker that
   * kicks the device right after its hello must see it back later and later, not every base/2 on average.
   */
  #resetBackoffWhenStable(): void {
    const stableMs = this.#env.behaviour.backoff.stableConnectionMs;
    if (stableMs === 0) {
      this.#attempt = 0;
      return;
    }
    this.#tasks.stable = this.#env.scheduler.after(stableMs, () => {
      if (this.#phase === "online") this.#attempt = 0;
    });
  }

  #onPuback(messageId: number): void {
    const message = this.#publisher.onPuback(messageId);
    if (!message) return;
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
      receiveDown(this, this.#codec, this.#topics, topic, payload, dup);
    } finally {
      // Acknowledge after handling, as firmware that has acted on the message would.
      if (qos === 1 && messageId !== undefined) this.#connection?.puback(messageId);
    }
  }

  #onClose(reason: CloseReason): void {
    const env = this.#env;
    const m = this.metrics;
    const wasConnected = this.#sessionUp;
    this.#sessionUp = false;
    this.#connection = undefined;
    this.#keepalive.stop();
    env.scheduler.cancel(this.#tasks.drop);
    env.scheduler.cancel(this.#tasks.connect);
    env.scheduler.cancel(this.#tasks.stable);
    if (this.#countedOnline) m.online--;
    this.#countedOnline = false;
    m.counters.disconnects++;
    if (reason.kind === "remote") m.counters.serverCloses++;
    // Before a CONNACK, anything but our own refusal handling (connack-N) or shutdown is a failed attempt.
    if (!wasConnected && (reason.kind !== "local" || reason.reason === "connect-timeout")) m.counters.connectErrors++;
    this.#lastErrorCode = reason.kind === "error" ? reason.code : undefined;
    this.#publisher.detach();
    if (this.#phase === "online")
      env.listener.offline(this.deviceId, reason.kind === "local" ? reason.reason : reason.kind);
    if (this.#phase === "stopped") return;
    this.#phase = "backoff";
    const delay = backoffDelayMs(this.#attempt++, env.behaviour.backoff, env.random);
    this.#tasks.connect = env.scheduler.after(delay, () => {
      if (this.#phase === "backoff") this.#connect();
    });
  }
}
