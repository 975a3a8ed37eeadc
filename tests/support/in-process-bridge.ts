/**
 * The in-process bridge the e2e, api, dashboard and firmware-sim suites start: loopback MQTT and HTTP on port 0, a
 * given API token and data directory, a silent logger, and devices provisioned through its registry.
 */
import assert from "node:assert/strict";
import { type Logger, pino } from "pino";
import { type Bridge, createBridge } from "../../app/bridge.ts";
import { type BridgeConfig, loadConfig } from "../../app/config/index.ts";
import type { CodecName } from "../../codecs/frames.ts";

/** What differs between the suites' bridges. */
export interface LoopbackBridgeOptions {
  /** The bridge's data directory; the caller creates and removes it. */
  dataDir: string;
  /** Bearer token of the operator API. */
  apiToken: string;
  /** Engine replicas to configure. Default: none (no engine client). */
  engineUrls?: string[];
  /** `mqtt.registryCheckMs`: how often the broker looks for devices another process removed. Default: the config's. */
  registryCheckMs?: number;
  /** `mqtt.limits.maxUnackedDownPerDevice`: a persistent session's window of unacknowledged QoS 1 down frames. */
  maxUnackedDownPerDevice?: number;
  /** The bridge's logger. Default: silent. */
  logger?: Logger;
}

/** A validated config for a bridge on loopback, ports chosen by the system; fails the test when it does not load. */
export function loopbackConfig(options: LoopbackBridgeOptions): BridgeConfig {
  const loaded = loadConfig({
    overrides: {
      dataDir: options.dataDir,
      mqtt: {
        host: "127.0.0.1",
        port: 0,
        ...(options.registryCheckMs === undefined ? {} : { registryCheckMs: options.registryCheckMs }),
        ...(options.maxUnackedDownPerDevice === undefined
          ? {}
          : { limits: { maxUnackedDownPerDevice: options.maxUnackedDownPerDevice } }),
      },
      http: { host: "127.0.0.1", port: 0, apiToken: options.apiToken },
      ...(options.engineUrls === undefined ? {} : { engine: { urls: options.engineUrls } }),
    },
  });
  if (!loaded.ok) throw new Error(`the test config did not load: ${JSON.stringify(loaded.issues)}`);
  return loaded.config;
}

/** Creates (does not start) a bridge from {@link loopbackConfig}, with a silent logger unless given one. */
export function createLoopbackBridge(options: LoopbackBridgeOptions): Promise<Bridge> {
  return createBridge(loopbackConfig(options), { logger: options.logger ?? pino({ level: "silent" }) });
}

/** Adds each id to the bridge's registry with `codec`; fails the test unless every one is newly created. */
export async function provisionDevices(
  bridge: Bridge,
  ids: readonly string[],
  codec: CodecName,
): Promise<Array<{ id: string; secret: string }>> {
  const credentials: Array<{ id: string; secret: string }> = [];
  for (const id of ids) {
    const added = await bridge.registry.add(id, { codec });
    assert.equal(added.status, "created");
    if (added.status === "created") credentials.push({ id, secret: added.secret });
  }
  return credentials;
}
