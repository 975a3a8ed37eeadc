/**
 * A plain aedes broker whose publish hook plays the part of the bridge's agents for metric aliases only: it keeps each
 * device's alias table from its hello (`metrics`), stores the `seq` of every telemetry frame it accepts, and refuses
 * `rv` telemetry without a table with `down/error BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN`, written before the PUBACK as
 * the bridge does. `forgetAfter` makes it lose a device's table once, after that many accepted frames, as an agent
 * whose data was wiped while the device stayed connected would.
 */
import type { UpFrames } from "../../../codecs/frames.ts";
import { cborCodec, parseTopic } from "../../../codecs/index.ts";
import { startAedes, type TestBroker } from "./aedes-broker.ts";

export interface AliasLosingBroker extends TestBroker {
  /** Seqs of the telemetry frames accepted per device, in arrival order (duplicates kept). */
  stored(deviceId: string): number[];
  /** Hellos received per device. */
  hellos(deviceId: string): number;
  /** Telemetry frames refused per device. */
  refused(deviceId: string): number;
}

interface DeviceTable {
  metrics: readonly string[] | undefined;
  accepted: number;
  forgotten: boolean;
  hellos: number;
  refused: number;
  seqs: number[];
}

export async function startAliasLosingBroker(options: { forgetAfter: number }): Promise<AliasLosingBroker> {
  const devices = new Map<string, DeviceTable>();
  const tableOf = (id: string): DeviceTable => {
    let table = devices.get(id);
    if (!table) {
      table = { metrics: undefined, accepted: 0, forgotten: false, hellos: 0, refused: 0, seqs: [] };
      devices.set(id, table);
    }
    return table;
  };
  const broker: TestBroker = await startAedes({
    authorizePublish: (client, packet, callback) => {
      const parsed = parseTopic(packet.topic);
      if (client === null || !parsed.ok || parsed.topic.direction !== "up") return callback(null);
      const { deviceId, channel } = parsed.topic;
      const decoded = cborCodec.decodeUp(channel, packet.payload as Buffer);
      if (!decoded.ok) return callback(null);
      const table = tableOf(deviceId);
      if (channel === "hello") {
        table.hellos++;
        const hello = decoded.frame as UpFrames["hello"];
        if (hello.metrics !== undefined) table.metrics = hello.metrics;
        return callback(null);
      }
      if (channel !== "telemetry") return callback(null);
      const frame = decoded.frame as UpFrames["telemetry"];
      if (frame.rv !== undefined && table.metrics === undefined) {
        table.refused++;
        const error = cborCodec.encodeDown("error", {
          code: "BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN",
          msg: "telemetry rv needs a metric alias table: send hello with metrics first",
        });
        const topic = `devices/${deviceId}/down/error`;
        const down = { cmd: "publish", topic, payload: Buffer.from(error), qos: 0, retain: false, dup: false } as const;
        // The error is written on the next check phase; the PUBACK waits one more, so it follows the error.
        broker.broker.publish(down, () => setImmediate(() => setImmediate(() => callback(null))));
        return;
      }
      if (typeof frame.r?.seq === "number") table.seqs.push(frame.r.seq);
      table.accepted++;
      if (!table.forgotten && table.accepted >= options.forgetAfter) {
        table.forgotten = true;
        table.metrics = undefined;
      }
      return callback(null);
    },
  });
  return {
    ...broker,
    stored: (id) => devices.get(id)?.seqs ?? [],
    hellos: (id) => devices.get(id)?.hellos ?? 0,
    refused: (id) => devices.get(id)?.refused ?? 0,
  };
}
