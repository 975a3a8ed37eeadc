/**
 * A bridge data dir for one benchmark phase: a config file with the flood limits raised (the benchmark measures
 * capacity, not the per-device rate limiter) and, unless anonymous, devices provisioned through the device registry
 * with scrypt secrets, timed, as `agent-bridge devices add` would store them.
 */
import fs from "node:fs";
import path from "node:path";
import { REGISTRY_FILE } from "../../app/bridge/layout.ts";
import { createDeviceRegistry } from "../../broker/index.ts";
import type { Cleanup } from "./cleanup.ts";

export interface BridgeDataOptions {
  /** Devices to provision (0: anonymous phase, none provisioned). */
  provision: number;
  idPrefix: string;
  /** Agents idle this long hibernate, ms. */
  idleTimeoutMs: number;
  maxConnections: number;
  /** Agents in memory at most (the runtime's default when absent). */
  maxActiveAgents?: number;
}

export interface BridgeData {
  dataDir: string;
  configFile: string;
  /** Secrets by device index. */
  secrets: string[];
  /** Wall time to provision them, ms (0 when none). */
  provisionMs: number;
}

/** Secrets hashed at once: scrypt runs on libuv's thread pool (4 threads by default). */
const PROVISION_CONCURRENCY = 4;

export async function prepareBridgeData(options: BridgeDataOptions, cleanup: Cleanup): Promise<BridgeData> {
  const dataDir = cleanup.tempDir("bench-fleet-bridge-");
  const configFile = path.join(dataDir, "bench-config.json");
  const config = {
    mqtt: {
      limits: {
        messagesPerSecond: 1_000_000,
        burstMessages: 1_000_000,
        maxConnections: options.maxConnections,
      },
    },
    agents: {
      idleTimeoutMs: options.idleTimeoutMs,
      ...(options.maxActiveAgents === undefined ? {} : { maxActiveAgents: options.maxActiveAgents }),
    },
  };
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  const secrets: string[] = [];
  let provisionMs = 0;
  if (options.provision > 0) {
    const registry = createDeviceRegistry({ path: path.join(dataDir, REGISTRY_FILE) });
    try {
      const started = performance.now();
      let next = 0;
      const worker = async () => {
        while (next < options.provision) {
          const index = next++;
          const result = await registry.add(`${options.idPrefix}${index}`, { codec: "cbor" });
          if (result.status !== "created")
            throw new Error(`provisioning ${options.idPrefix}${index}: ${result.status}`);
          secrets[index] = result.secret;
        }
      };
      await Promise.all(Array.from({ length: PROVISION_CONCURRENCY }, worker));
      provisionMs = performance.now() - started;
    } finally {
      registry.close();
    }
  }
  return { dataDir, configFile, secrets, provisionMs };
}
