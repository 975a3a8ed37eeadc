/**
 * The warnings of packets the ACL refuses (acl.ts). A device may repeat the same refusal without end: a SUBSCRIBE with
 * a thousand filters outside its namespace is answered 0x80 for each while the session stays up, and a device whose
 * firmware publishes to a wrong topic is cut and publishes there again after each reconnect. Each refusal is logged
 * at most once per interval per device (throttled-warning-per-key.ts), with `count`, the refusals since its last line;
 * the counters (`aclDenied`) are the callers' and count every refusal.
 */
import type { Clock } from "../clock.ts";
import type { BrokerLogger } from "../options.ts";
import { ThrottledWarningPerKey } from "../throttled-warning-per-key.ts";

export const PUBLISH_DENIED_WARNING = "publish outside namespace";
export const SUBSCRIBE_DENIED_WARNING = "subscribe outside namespace";

/** Topics are cut to this many characters in a line: a topic may be 64 KiB. */
const TOPIC_CHARS_LOGGED = 256;

export class AclWarnings {
  // Keyed by device, as the connect refusals are: devices behind one NAT do not hide each other's lines.
  readonly #publish: ThrottledWarningPerKey;
  readonly #subscribe: ThrottledWarningPerKey;

  constructor(logger: BrokerLogger, clock: Clock) {
    this.#publish = new ThrottledWarningPerKey(logger, clock, PUBLISH_DENIED_WARNING, { keysAre: "devices" });
    this.#subscribe = new ThrottledWarningPerKey(logger, clock, SUBSCRIBE_DENIED_WARNING, { keysAre: "devices" });
  }

  /** A PUBLISH of `device` to `topic`, outside its up namespace (the session is cut). */
  publishDenied(device: string, topic: string): void {
    this.#publish.note(device, { device, topic: topic.slice(0, TOPIC_CHARS_LOGGED) });
  }

  /** A filter of a SUBSCRIBE of `device` outside its down namespace (answered 0x80; the session stays up). */
  subscribeDenied(device: string, topic: string): void {
    this.#subscribe.note(device, { device, topic: topic.slice(0, TOPIC_CHARS_LOGGED) });
  }
}
