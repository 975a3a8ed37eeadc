/**
 * One accepted device session: the broker's per-connection state between an aedes client and the agent host.
 * A new MQTT session for the same device (takeover) is a new DeviceConnection with a new id.
 */
import type { Client } from "aedes";
import type { CloseReason } from "../agents/host.ts";
import type { CodecName, DownMessage } from "../codecs/frames.ts";
import { type CodecSource, negotiateCodec } from "../codecs/index.ts";
import type { SharedDeviceCodec } from "./device-codecs.ts";
import type { ReadPacer } from "./read-pacer.ts";
import type { BrokerTransportKind } from "./observer.ts";
import { SubscriptionTable } from "./subscription-table.ts";
import type { TokenBucket } from "./token-bucket.ts";
import type { UpTopic } from "./wire.ts";

/** A down frame waiting for the session to be ready or subscribed; encoded when it leaves. */
export interface HeldDown {
  message: DownMessage;
  qos: 0 | 1;
}

/** A down frame encoded for its session, on its way to the stream (down-hand-over.ts). */
export interface EncodedDown {
  topic: string;
  payload: Buffer;
  /** The final QoS: what was asked, raised for the channel, capped by the subscription. */
  qos: 0 | 1;
  channel: string;
  codec: CodecName;
  /** Runs once aedes reported the frame written, or once the frame was dropped (`sendLast`). */
  written: (() => void) | undefined;
}

export interface ConnectionFacts {
  connectionId: string;
  deviceId: string;
  transport: BrokerTransportKind;
  remoteAddress: string;
  /** The codec of the device's registry record when the session was accepted (provisioning or an earlier hello). */
  registryCodec: CodecName | undefined;
  /** The broker's default codec. */
  defaultCodec: CodecName;
  /** The device's last hello codec, shared with its other sessions (DeviceCodecs). */
  shared: SharedDeviceCodec;
  client: Client;
  clean: boolean;
  firmware?: string;
  /** False for a device accepted in anonymous mode without a registry record. */
  registered: boolean;
  /**
   * `recordId` of the registry record the session's secret was verified against (undefined when not registered): a
   * record removed and added again (a new secret) has another, and the registry watch ends the old session.
   */
  recordId?: string;
}

export class DeviceConnection {
  readonly connectionId: string;
  readonly deviceId: string;
  readonly transport: BrokerTransportKind;
  readonly remoteAddress: string;
  readonly client: Client;
  readonly clean: boolean;
  readonly firmware: string | undefined;
  readonly registered: boolean;
  readonly recordId: string | undefined;
  readonly registryCodec: CodecName | undefined;
  readonly defaultCodec: CodecName;
  readonly shared: SharedDeviceCodec;
  /** The codec this session's own hello named. */
  helloCodec: CodecName | undefined;
  /** The codec suffix of this session's latest decoded up message; undefined when it had none. */
  topicCodec: CodecName | undefined;
  /**
   * The largest down frame the device can receive, as its agent knows it (the hello's `maxFrame`, kept across
   * sessions by the agent); null until the agent says. The broker's own error frames are cut to fit it.
   */
  maxFrame: number | null = null;
  /** Set once `host.open` committed; until then (and after close) up messages are refused. */
  opened = false;
  /** Set once the session is over for the broker; no more deliveries, no more down frames. */
  closed = false;
  /** Decided by whoever ended the session (takeover, shutdown, protocol abuse, last will). */
  closeReason: CloseReason | undefined;
  private closeReasonTentative = false;
  /** Set once `host.close` was called for this connection (it is called at most once). */
  hostClosed = false;
  /** Set once the broker finished its bookkeeping for the ended session. */
  finished = false;
  /** Settles when `host.open` settled; close waits for it so the host sees open before close. Unset until opening. */
  openSettled: Promise<unknown> | undefined;
  /** Up messages accepted (from the PUBLISH hook on) and not yet answered. */
  inflight = 0;
  /** The pacer of aedes' reads of the session's stream (read-pacer.ts; made when its socket was accepted). */
  readPacer: ReadPacer | undefined;
  /**
   * Set while a QoS 2 retransmission is checked against aedes' store (asynchronously); the session's later up
   * messages wait behind it, so they still reach the agent, and are answered, in arrival order.
   */
  upGate: Promise<void> | undefined;
  /** Consecutive messages refused by the rate limit. */
  rateBreaches = 0;
  readonly bucket: TokenBucket;
  /**
   * Hand-overs to `host.deliver` started and not yet accepted by the mailbox. While none is, the next message is
   * handed over synchronously; otherwise it queues behind `deliverTail`, so events reach the mailbox in arrival order.
   */
  handOversPending = 0;
  /** Settles when the latest pending hand-over did; meaningful only while `handOversPending > 0`. */
  deliverTail: Promise<void> | undefined;
  /**
   * Set once the session's end gave up the up messages still waiting for room in the agent's mailbox
   * (SessionManager.handedOver): they, and any the session still had in hand, are dropped unacknowledged.
   */
  handOversAbandoned = false;
  /**
   * Ends the wait of the hand-over waiting for room in the mailbox, the first of the session's (the others wait behind
   * it, in order); set only while one waits.
   */
  wakeHandOver: (() => void) | undefined;
  /**
   * Set when aedes reports the session ready (CONNACK written and a persistent session's offline queue flushed).
   * Frames the agent sends before that (from onConnect, during CONNECT) wait in `pendingDown`: a PUBLISH must not
   * precede the CONNACK, and aedes would send a frame twice if it raced the offline-queue flush.
   */
  ready = false;
  /** Created on first use: most sessions never hold a frame, and 10,000 idle sessions should not carry empty arrays. */
  pendingDown: HeldDown[] | undefined;
  /**
   * Frames for topics the session had not subscribed to yet, sent within `subscribeGraceMs` of the CONNACK: a device
   * subscribes right after connecting, and the agent's first frames (identity, state) must not be lost to that race.
   * Created on first use.
   */
  heldDown: HeldDown[] | undefined;
  /** Until when (the broker clock's monotonicNow) unsubscribed frames are held rather than dropped. */
  holdUntilMs = 0;
  /** The timer that drops what is still held when the grace period ends (armed only while something is held). */
  holdTimer: unknown;
  /**
   * Up messages whose outcome has not been reported to aedes yet. While none is, an outcome known at once (a refusal)
   * is reported at once; otherwise outcomes are reported in arrival order through `ackTail`, so PUBACKs are too.
   */
  acksPending = 0;
  /** Settles after the latest pending outcome was reported; meaningful only while `acksPending > 0`. */
  ackTail: Promise<void> | undefined;
  /**
   * The latest up topic that passed the ACL and parsed, and its parse: a device publishes to the same few topics,
   * so the per-message split and checks run once per topic change, not once per message.
   */
  lastUpTopic: string | undefined;
  lastUpParsed: UpTopic | undefined;
  /** When the registry was last told this device was seen (monotonicNow); touched at most once a second. */
  touchedAtMs = Number.NEGATIVE_INFINITY;
  /**
   * Down frames handed to aedes (`client.publish`) whose callback has not run yet, i.e. not yet written to the stream.
   * While any is, QoS 0 frames are not written on the spot (down-write-now.ts): they would overtake it.
   */
  downInAedes = 0;
  /**
   * QoS 1 frames of a persistent session handed to aedes and not yet written: aedes stores each (asynchronously) before
   * it even orders it for writing, so frames sent meanwhile wait in `downWaiting` (down-hand-over.ts).
   */
  downStoring = 0;
  /**
   * QoS 1 frames of a persistent session in aedes' store and not yet acknowledged: those aedes resent after the
   * CONNACK (counted when the session opened) and those handed over since. At `maxUnackedDownPerDevice`, further
   * QoS 1 frames wait in `downWaiting` (down-hand-over.ts).
   */
  downUnacked = 0;
  /**
   * Frames waiting, in order, for `downStoring` to fall to 0 or for `downUnacked` to fall below its bound; created on
   * first use, at most MAX_QUEUED_DOWN_PER_DEVICE.
   */
  downWaiting: EncodedDown[] | undefined;
  /**
   * Set once the ended session's down frames were settled (`DownSender.discard`): a takeover and the session's own end
   * both ask, and only the first may act (a removed device's queue is emptied once, not again under a new session).
   */
  downDiscarded = false;
  /** Granted subscription filters and their QoS; down frames go only where one matches. */
  readonly subscriptions = new SubscriptionTable();

  /** `bucket` is the device's rate limit, shared by its sessions (DeviceRateLimits). */
  constructor(facts: ConnectionFacts, bucket: TokenBucket) {
    this.connectionId = facts.connectionId;
    this.deviceId = facts.deviceId;
    this.transport = facts.transport;
    this.remoteAddress = facts.remoteAddress;
    this.client = facts.client;
    this.clean = facts.clean;
    this.firmware = facts.firmware;
    this.registered = facts.registered;
    this.recordId = facts.recordId;
    this.registryCodec = facts.registryCodec;
    this.defaultCodec = facts.defaultCodec;
    this.shared = facts.shared;
    this.bucket = bucket;
  }

  /**
   * Codec of down frames, decided when a frame leaves, not when the session opened: this session's hello, else the
   * device's last hello in another session (a takeover twin), else the registry record, else the codec suffix of the
   * device's latest up message in this session (only a device nothing else is known about), else the default.
   * The rule itself is `negotiateCodec` (codecs/negotiate.ts), shared with the rest of the bridge.
   */
  get codec(): CodecName {
    return this.codecChoice(true).codec;
  }

  /** Where `codec` comes from now. */
  get codecSource(): CodecSource {
    return this.codecChoice(true).source;
  }

  /**
   * The codec of up messages without a suffix: as `codec`, but a suffix names the codec of its own message only.
   * `source` "default" means nothing is known about the device's codec.
   */
  upCodec(): { codec: CodecName; source: CodecSource } {
    return this.codecChoice(false);
  }

  private codecChoice(withTopic: boolean): { codec: CodecName; source: CodecSource } {
    // A suffix never outranks a hello or the registry: a CBOR device that sends one /json message is still a CBOR
    // device, and a binary connection never receives JSON text (DESIGN section 3).
    return negotiateCodec({
      helloCodec: this.helloCodec ?? this.shared.hello,
      registryCodec: this.registryCodec,
      latestTopicCodec: withTopic ? this.topicCodec : undefined,
      defaultCodec: this.defaultCodec,
    });
  }

  /**
   * Resolves once every up message this session received has left the broker's hands: handed to the agent's mailbox
   * or given up (`hostClosed`). Waits behind QoS 2 checks (`upGate`) and hand-overs waiting for room (`deliverTail`);
   * the session's end waits for it (bounded), so its agent gets them before the close.
   */
  async untilHandedOver(): Promise<void> {
    for (;;) {
      if (this.upGate !== undefined) await this.upGate;
      else if (this.handOversPending > 0 && this.deliverTail !== undefined) await this.deliverTail;
      else return;
    }
  }

  /**
   * Gives up the up messages that still wait for room in the agent's mailbox: each hand-over returns at once, dropping
   * its message unacknowledged, rather than wait for room a stuck agent may never make.
   */
  abandonHandOvers(): void {
    this.handOversAbandoned = true;
    this.wakeHandOver?.();
  }

  /** Records the codec a hello of this session named; the device's other sessions follow it. */
  noteHello(codec: CodecName): void {
    this.helloCodec = codec;
    this.shared.hello = codec;
  }

  /**
   * Marks why the session ends. The first decided reason wins (takeover, shutdown, a disconnect the broker imposed).
   * A tentative reason (a socket error or keepalive timeout noticed by aedes) gives way to `will` when the last will
   * turns out to be due: the device vanished, which is what the will means.
   */
  markClosing(reason: CloseReason, options: { tentative?: boolean } = {}): void {
    if (this.closeReason === undefined || (this.closeReasonTentative && reason === "will")) {
      this.closeReason = reason;
      this.closeReasonTentative = options.tentative === true;
    }
  }
}
