/**
 * The codec each device said it speaks in its last hello, shared by all of the device's live sessions. A session that
 * has not said hello yet (a takeover twin, a reconnect whose hello is still on the way) encodes with it, so it never
 * falls back to a registry record read before another session's hello changed it. Entries live while the device has
 * a session; the registry keeps the hello's codec for the next one.
 */
import type { CodecName } from "../codecs/frames.ts";

/** One device's codec facts, shared by its sessions. */
export interface SharedDeviceCodec {
  /** The codec of the device's last hello seen by this broker; undefined until one names a codec. */
  hello: CodecName | undefined;
}

/** The shared facts and the count of sessions holding them, in one object per device. */
interface Entry extends SharedDeviceCodec {
  sessions: number;
}

export class DeviceCodecs {
  private readonly entries = new Map<string, Entry>();

  /** The device's shared codec facts, for a new session. Pair with `release`. */
  acquire(deviceId: string): SharedDeviceCodec {
    let entry = this.entries.get(deviceId);
    if (!entry) {
      entry = { hello: undefined, sessions: 0 };
      this.entries.set(deviceId, entry);
    }
    entry.sessions++;
    return entry;
  }

  /** A session of the device ended; the entry goes with the last one (the registry remembers the codec). */
  release(deviceId: string): void {
    const entry = this.entries.get(deviceId);
    if (!entry) return;
    entry.sessions--;
    if (entry.sessions <= 0) this.entries.delete(deviceId);
  }

  /** Devices with an entry (for tests). */
  get size(): number {
    return this.entries.size;
  }
}
