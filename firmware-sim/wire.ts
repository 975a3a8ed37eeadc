/**
 * The device's view of the wire: topics (through the codecs' topic helpers) and the JSON-text sniff. Frame encoding
 * itself is the codecs' job.
 */
import {
  type CodecName,
  type DownChannel,
  deviceTopicFilters,
  formatUpTopic,
  parseTopic,
  type UpChannel,
} from "../codecs/index.ts";

/** Up topics of one device, formatted once: ten thousand devices publishing should not rebuild strings per message. */
export class DeviceTopics {
  readonly down: string;
  readonly #up = new Map<string, string>();
  readonly #deviceId: string;

  constructor(deviceId: string) {
    this.#deviceId = deviceId;
    this.down = deviceTopicFilters(deviceId).down;
  }

  /** `devices/{id}/up/{channel}`, with `/{codec}` when given. */
  up(channel: UpChannel, codec?: CodecName): string {
    const key = codec ? `${channel}/${codec}` : channel;
    let topic = this.#up.get(key);
    if (topic === undefined) {
      topic = formatUpTopic(this.#deviceId, channel, codec);
      this.#up.set(key, topic);
    }
    return topic;
  }

  /**
   * The down channel of `topic`: a channel when it is this device's down topic, "unknown" for another topic under
   * its down prefix (a channel this firmware does not know), undefined for anything else.
   */
  parseDown(topic: string): DownChannel | "unknown" | undefined {
    const parsed = parseTopic(topic);
    if (parsed.ok) {
      const t = parsed.topic;
      return t.direction === "down" && t.deviceId === this.#deviceId ? t.channel : undefined;
    }
    return topic.startsWith(this.down.slice(0, -1)) ? "unknown" : undefined;
  }
}

/**
 * True when `bytes` are a JSON text (an object, array or string after optional whitespace, that parses).
 * A CBOR frame is a map (first byte 0xa0-0xbf) and a protobuf `Frame` starts with a field tag, so neither passes.
 */
export function looksLikeJsonText(bytes: Uint8Array): boolean {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  const first = bytes[i];
  if (first !== 0x7b && first !== 0x5b && first !== 0x22) return false;
  try {
    JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return true;
  } catch {
    return false;
  }
}
