/**
 * A broker in front of the real agent runtime with the default DeviceAgent (or a given class), on 127.0.0.1 port 0,
 * for tests that need what a device really receives (frames the runtime and the DeviceAgent produce, in the codec the
 * broker picks).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { type AgentClass, type AgentRuntime, createRuntime, DeviceAgent } from "../../agents/index.ts";
import { type Broker, createBroker, createDeviceRegistry, type DeviceRegistry } from "../../broker/index.ts";
import type { CodecName } from "../../codecs/frames.ts";

export interface RuntimeBroker {
  runtime: AgentRuntime;
  registry: DeviceRegistry;
  broker: Broker;
  port: number;
  url: string;
  /** Provisions a device (codec omitted: none recorded) and returns its secret. */
  addDevice(id: string, codec?: CodecName): Promise<string>;
  close(): Promise<void>;
}

export interface RuntimeBrokerOptions {
  maxDatabaseBytes?: number;
  /** The class serving every device. Default: DeviceAgent. */
  agentClass?: AgentClass;
}

export async function startRuntimeBroker(options: RuntimeBrokerOptions = {}): Promise<RuntimeBroker> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-runtime-"));
  const runtime = createRuntime({
    dataDir: path.join(dir, "agents"),
    defaultAgentClass: options.agentClass ?? DeviceAgent,
    logger: pino({ level: "silent" }),
    ...(options.maxDatabaseBytes === undefined ? {} : { maxDatabaseBytes: options.maxDatabaseBytes }),
  });
  const registry = createDeviceRegistry({ path: path.join(dir, "registry.db"), scrypt: { N: 1024, r: 8, p: 1 } });
  let broker: Broker | undefined;
  const close = async (): Promise<void> => {
    await broker?.close();
    await runtime.shutdown();
    registry.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await runtime.start();
    broker = createBroker({ host: runtime, registry, tcp: { host: "127.0.0.1", port: 0 } });
    const { tcp } = await broker.start();
    const port = tcp?.port ?? 0;
    return {
      runtime,
      registry,
      broker,
      port,
      url: `mqtt://127.0.0.1:${port}`,
      async addDevice(id, codec) {
        const added = await registry.add(id, codec === undefined ? {} : { codec });
        if (added.status !== "created") throw new Error(`could not add ${id}: ${added.status}`);
        return added.secret;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
