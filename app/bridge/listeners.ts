/** Listener facts the bridge reports and the TLS material it reads once at start. */
import { readFileSync } from "node:fs";
import type { ProxyProtocolOptions } from "../../broker/index.ts";
import { BridgeError } from "../../errors/index.ts";
import type { BridgeConfig } from "../config/index.ts";

/** A bound listener: the address it listens on and its real port. */
export interface Address {
  host: string;
  port: number;
}

/** Reads the PEM files of MQTT over TLS; undefined when TLS is not configured. */
export function readTlsFiles(config: BridgeConfig): { cert: Buffer; key: Buffer; ca?: Buffer } | undefined {
  const { certFile, keyFile, caFile } = config.mqtt.tls;
  if (certFile === undefined || keyFile === undefined) return undefined;
  const read = (file: string, field: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (cause) {
      throw new BridgeError("BRIDGE_ERR_CONFIG", `${field} ${file} cannot be read`, { field }, { cause });
    }
  };
  return {
    cert: read(certFile, "mqtt.tls.certFile"),
    key: read(keyFile, "mqtt.tls.keyFile"),
    ...(caFile === undefined ? {} : { ca: read(caFile, "mqtt.tls.caFile") }),
  };
}

/** A listener's PROXY protocol as the broker takes it: off (undefined) while the config lists no balancer. */
export function proxyProtocolOf(setting: BridgeConfig["mqtt"]["proxyProtocol"]): ProxyProtocolOptions | undefined {
  if (setting.trustedSources.length === 0) return undefined;
  return { trustedSources: setting.trustedSources, headerTimeoutMs: setting.headerTimeoutMs };
}
