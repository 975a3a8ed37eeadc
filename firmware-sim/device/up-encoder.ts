/**
 * What a device's up messages look like on the wire: each frame in the device's codec under its up topic, and the
 * hello its profile sends. Like the CONNECT (connect-packet.ts), apart from the connection loop (virtual-device.ts),
 * which decides when each message goes out and what its PUBACK means.
 */
import type { Codec } from "../../codecs/codec.ts";
import type { CodecName, UpChannel, UpFrames } from "../../codecs/frames.ts";
import type { Profile } from "../profiles/profile.ts";
import type { DeviceTopics } from "../wire.ts";
import type { Outgoing, OutgoingKind } from "./outbox.ts";

export class UpEncoder {
  constructor(
    private readonly topics: DeviceTopics,
    private readonly codecName: CodecName,
    private readonly codec: Codec,
  ) {}

  /** `frame` as a message not yet sent; `ref` is what its PUBACK confirms (Outgoing.ref). */
  encode<C extends UpChannel>(
    channel: C,
    frame: UpFrames[C],
    kind: OutgoingKind,
    ref: number | string | undefined,
  ): Outgoing {
    // The hello names its codec in the topic: the bridge cannot know the codec before it has read the hello.
    const topic = channel === "hello" ? this.topics.up(channel, this.codecName) : this.topics.up(channel);
    return { channel, topic, payload: this.codec.encodeUp(channel, frame), kind, ref, dup: false, sentMs: 0 };
  }

  /** The hello of a device with `profile`: the first message of every connection, and the answer to a lost table. */
  hello(profile: Profile): Outgoing {
    return this.encode("hello", helloFrame(profile, this.codecName), "hello", undefined);
  }
}

/** The hello of a device with `profile` speaking `codec`. */
export function helloFrame(profile: Profile, codec: CodecName): UpFrames["hello"] {
  const hello: UpFrames["hello"] = { fw: profile.firmware, codec, sync: true, stream: profile.streams };
  if (profile.maxFrameBytes !== undefined) hello.maxFrame = profile.maxFrameBytes;
  // Every hello carries the table: the bridge may have lost it (new gateway, wiped data) since the last one.
  if (profile.metricAliases !== undefined && profile.metricAliases.length > 0)
    hello.metrics = [...profile.metricAliases];
  return hello;
}
