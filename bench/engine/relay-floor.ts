/**
 * The floor of the bridge benchmark: the least an MQTT-to-engine relay does for a device's `up/reason`, run as its
 * own process like the bridge (`node --import tsx bench/engine/relay-floor.ts SIM_URL MODEL CONNECTIONS`). Plain
 * aedes over net (no auth, no agents, no storage), the question decoded and the prompt a DeviceAgent would send
 * built from it (agent-prompt.ts), the POST and the SSE reading of the direct baseline (direct.ts), and each text
 * delta published as a `down/reason` chunk at QoS 0, the final frame with the usage at QoS 1, in CBOR. What it adds
 * over the direct caller is what any relay on this machine pays: two more loopback hops, aedes and mqtt.js on each
 * side, and the frames' codec; what the bridge adds beyond it is the bridge's own work.
 * Prints `{"port": N}` once listening; SIGTERM closes it.
 */
import { Aedes } from "aedes";
import { cborCodec } from "../../codecs/index.ts";
import { serveAedesOnLoopback } from "../fleet/aedes-on-loopback.ts";
import type { ReasonStreamFrame } from "../../codecs/index.ts";
import { agentShapedPrompt } from "./agent-prompt.ts";
import { createDirectPool, type DirectUsage, streamDirect } from "./direct.ts";

const [simUrl, model, connections] = process.argv.slice(2);
if (simUrl === undefined || model === undefined) throw new Error("usage: relay-floor.ts SIM_URL MODEL [CONNECTIONS]");
const pool = createDirectPool(simUrl, Number(connections ?? "1"));
const aedes = new Aedes({ maxClientsIdLength: 64 });
const UP_REASON = /^devices\/([^/]+)\/up\/reason$/;

function publish(deviceId: string, frame: ReasonStreamFrame, qos: 0 | 1): void {
  aedes.publish(
    {
      cmd: "publish",
      topic: `devices/${deviceId}/down/reason`,
      payload: Buffer.from(cborCodec.encodeDown("reason", frame)),
      qos,
      retain: false,
      dup: false,
    },
    () => {},
  );
}

async function relay(deviceId: string, payload: Buffer): Promise<void> {
  const decoded = cborCodec.decodeUp("reason", payload);
  if (!decoded.ok) return;
  const { id, q, max } = decoded.frame;
  let seq = 0;
  let usage: DirectUsage = { completionTokens: 0, promptTokens: 0, cachedTokens: 0 };
  let finish = "stop";
  try {
    await streamDirect(
      pool,
      model as string,
      { ...agentShapedPrompt(deviceId, q, Date.now()), ...(max === undefined ? {} : { maxTokens: max }) },
      {
        text: (text) => publish(deviceId, { id, seq: seq++, text }, 0),
        usage: (u) => {
          usage = u;
        },
      },
    );
  } catch {
    finish = "error";
  }
  publish(
    deviceId,
    { id, seq, fin: true, fr: finish, u: { p: usage.promptTokens, c: usage.completionTokens, k: usage.cachedTokens } },
    1,
  );
}

aedes.authorizePublish = (client, packet, callback) => {
  const match = client === null ? null : UP_REASON.exec(packet.topic);
  if (match !== null) void relay(match[1] as string, packet.payload as Buffer);
  // The PUBACK after the engine request's write, which undici makes on the check phase, as the bridge does.
  setImmediate(callback, null);
};

await serveAedesOnLoopback(aedes, () => void pool.close());
