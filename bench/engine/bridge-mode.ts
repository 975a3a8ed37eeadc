/**
 * The "bridge" benchmark mode: each agent id is a device connected over MQTT to a bridge process; a call publishes
 * the question as `up/reason` and ends at the final `down/reason` frame. The bridge builds the prompt itself, so a
 * call uses only the question (the part of `user` before the device context, when the prompt is agent-shaped).
 */
import { type BenchDevice, connectDevice } from "./mqtt-device.ts";
import type { BenchMode, StreamOutcome } from "./modes.ts";

export interface BridgeMode extends BenchMode {
  /** Connects these devices now, so connection setup is never timed. */
  connect(ids: readonly string[]): Promise<void>;
  /** Text chunks that never arrived (QoS 0), over all calls so far. */
  lostChunks(): number;
}

/** `defaultMaxTokens`: what a call asks for when its prompt names no `maxTokens`. */
export function bridgeMode(mqttUrl: string, defaultMaxTokens: number): BridgeMode {
  const devices = new Map<string, Promise<BenchDevice>>();
  let lost = 0;
  let n = 0;
  const device = (id: string): Promise<BenchDevice> => {
    let d = devices.get(id);
    if (d === undefined) {
      d = connectDevice(mqttUrl, id);
      devices.set(id, d);
    }
    return d;
  };
  return {
    name: "bridge",
    async connect(ids) {
      await Promise.all(ids.map(device));
    },
    lostChunks: () => lost,
    async call(prompt): Promise<StreamOutcome> {
      const d = await device(prompt.agentId);
      const question = prompt.user.split("\n\n---\n")[0];
      const answer = await d.ask(`r${++n}`, question, prompt.maxTokens ?? defaultMaxTokens);
      if (answer.finishReason === "error") throw new Error(`bridge answered fr=error for ${prompt.agentId}`);
      lost += answer.lostChunks;
      return {
        latencyMs: answer.latencyMs,
        ttftMs: answer.firstChunkMs,
        tokens: answer.completionTokens,
        promptTokens: answer.promptTokens,
        cachedTokens: answer.cachedTokens,
        chunks: answer.chunks,
      };
    },
    async close() {
      const all = await Promise.allSettled(devices.values());
      await Promise.all(all.map((r) => (r.status === "fulfilled" ? r.value.close() : undefined)));
      devices.clear();
    },
  };
}
