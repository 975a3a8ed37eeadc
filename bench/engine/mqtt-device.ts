/**
 * A benchmark device over MQTT (mqtt.js, MQTT 3.1.1, CBOR frames): it asks `up/reason` questions and reads the
 * streamed `down/reason` chunks back, timing the first chunk and the final frame from the moment it published.
 * It knows no server code: only the wire protocol (docs/protocol.md).
 */
import net from "node:net";
import mqtt from "mqtt";
import type { MqttClient } from "mqtt";
import { cborCodec } from "../../codecs/index.ts";
import type { ReasonStreamFrame, UpChannel, UpFrames } from "../../codecs/index.ts";

/** What one answered question looked like from the device. */
export interface DeviceAnswer {
  /** Publish of up/reason to the first text chunk, ms (NaN when no chunk came: a non-streamed answer). */
  firstChunkMs: number;
  /** Publish of up/reason to the final frame, ms. */
  latencyMs: number;
  /** Text chunks received. */
  chunks: number;
  /** Chunks missing by seq (QoS 0 chunks may be dropped under load). */
  lostChunks: number;
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
}

interface Pending {
  start: number;
  firstChunkMs: number;
  chunks: number;
  resolve(answer: DeviceAnswer): void;
  reject(error: Error): void;
}

/** One connected device. */
export interface BenchDevice {
  readonly id: string;
  /** Publishes up/reason and resolves with the answer once the final frame arrives. */
  ask(requestId: string, question: string, maxTokens?: number): Promise<DeviceAnswer>;
  /** Publishes an up frame at QoS 1 and resolves at its PUBACK (the bridge stored it). */
  publish<C extends UpChannel>(channel: C, frame: UpFrames[C]): Promise<void>;
  close(): Promise<void>;
}

/** Connects device `id` (client id = device id) and subscribes to its reason and error topics. */
export async function connectDevice(url: string, id: string): Promise<BenchDevice> {
  const client: MqttClient = await mqtt.connectAsync(url, {
    clientId: id,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
  });
  // Without TCP_NODELAY a question published right after the PUBACK of the previous final frame waits for the
  // bridge's delayed ACK (Nagle): about 40 ms per question that no device firmware worth measuring would add.
  // The bridge's own sockets and firmware-sim's lean client set it too.
  const socket: unknown = client.stream;
  if (socket instanceof net.Socket) socket.setNoDelay(true);
  const pending = new Map<string, Pending>();
  client.on("message", (topic, payload) => {
    const channel = topic.slice(topic.lastIndexOf("/") + 1);
    if (channel === "error") {
      const decoded = cborCodec.decodeDown("error", payload);
      if (!decoded.ok) return;
      const p = decoded.frame.id === undefined ? undefined : pending.get(decoded.frame.id);
      if (p === undefined) return;
      pending.delete(decoded.frame.id ?? "");
      p.reject(new Error(`${decoded.frame.code}: ${decoded.frame.msg}`));
      return;
    }
    if (channel !== "reason") return;
    const decoded = cborCodec.decodeDown("reason", payload);
    if (!decoded.ok) return;
    const frame: ReasonStreamFrame = decoded.frame;
    const p = pending.get(frame.id);
    if (p === undefined) return;
    const now = performance.now();
    if (frame.fin !== true) {
      if (p.chunks === 0) p.firstChunkMs = now - p.start;
      p.chunks++;
      return;
    }
    pending.delete(frame.id);
    p.resolve({
      firstChunkMs: p.firstChunkMs,
      latencyMs: now - p.start,
      chunks: p.chunks,
      // The final frame's seq is the number of chunks sent before it.
      lostChunks: Number(frame.seq) - p.chunks,
      finishReason: frame.fr ?? "",
      promptTokens: Number(frame.u?.p ?? 0),
      completionTokens: Number(frame.u?.c ?? 0),
      cachedTokens: Number(frame.u?.k ?? 0),
    });
  });
  await client.subscribeAsync([`devices/${id}/down/reason`, `devices/${id}/down/error`], { qos: 1 });
  return {
    id,
    ask(requestId, question, maxTokens) {
      return new Promise<DeviceAnswer>((resolve, reject) => {
        const frame: UpFrames["reason"] = { id: requestId, q: question };
        if (maxTokens !== undefined) frame.max = maxTokens;
        pending.set(requestId, { start: performance.now(), firstChunkMs: Number.NaN, chunks: 0, resolve, reject });
        client.publish(`devices/${id}/up/reason`, Buffer.from(cborCodec.encodeUp("reason", frame)), { qos: 1 });
      });
    },
    async publish(channel, frame) {
      await client.publishAsync(`devices/${id}/up/${channel}`, Buffer.from(cborCodec.encodeUp(channel, frame)), {
        qos: 1,
      });
    },
    async close() {
      for (const p of pending.values()) p.reject(new Error("device closed"));
      pending.clear();
      await client.endAsync();
    },
  };
}
