/** Listener facts the bridge reports and the TLS material it reads once at start. */
import { readFileSync } from "node:fs";
import type { ProxyProtocolOptions } from "../../broker/index.ts";
import { BridgeError } from "../../errors/index.ts";
import type { BridgeConfig } from "../config/index.ts";
import { checkTlsMaterial, type TlsMaterial } from "./tls-material.ts";

/** A bound listener: the address it listens on and its real port. */
export interface Address {
  host: string;
  port: number;
}

/**
 * Reads the PEM files of MQTT over TLS and checks that TLS can use them (tls-material.ts); undefined when TLS is not
 * configured. Throws BRIDGE_ERR_CONFIG naming the setting for a file that cannot be read or used.
 */
export function readTlsFiles(config: BridgeConfig): TlsMaterial | undefined {
  const { certFile, keyFile, caFile } = config.mqtt.tls;
  if (certFile === undefined || keyFile === undefined) return undefined;
  const read = (file: string, field: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (cause) {
      throw new BridgeError("BRIDGE_ERR_CONFIG", `${field} ${file} cannot be read`, { field }, { cause });
    }
  };
  const material: TlsMaterial = {
    cert: read(certFile, "mqtt.tls.certFile"),
    key: read(keyFile, "mqtt.tls.keyFile"),
    ...(caFile === undefined ? {} : { ca: read(caFile, "mqtt.tls.caFile") }),
  };
  checkTlsMaterial(material, { certFile, keyFile, caFile });
  return material;
}

/** A listener's PROXY protocol as the broker takes it: off (undefined) while the config lists no balancer. */
export function proxyProtocolOf(setting: BridgeConfig["mqtt"]["proxyProtocol"]): ProxyProtocolOptions | undefined {
  if (setting.trustedSources.length === 0) return undefined;
  return { trustedSources: setting.trustedSources, headerTimeoutMs: setting.headerTimeoutMs };
}
