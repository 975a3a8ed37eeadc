/**
 * Checks the PEM material of MQTT over TLS while the bridge is built, before anything opens: a file that holds no
 * certificate or key, or a key that is not the certificate's, is the operator's setting to fix, so it is a
 * BRIDGE_ERR_CONFIG naming that setting (`agent-bridge start` prints `config error: mqtt.tls.certFile ...`, exit 2).
 * Unchecked, OpenSSL refused it only when the TLS listener started, and the start failed as a fault would (a fatal
 * log line with OpenSSL's stack, exit 1); a CA bundle of no certificate at all was even taken, and every device with a
 * client certificate refused later.
 */
import { createSecureContext } from "node:tls";
import { X509Certificate } from "node:crypto";
import { BridgeError } from "../../errors/index.ts";

/** The PEM contents read from the files the config names. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

/** The files they were read from, for the messages. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile?: string;
}

/** OpenSSL's reason without its numeric prefix: `PEM routines::no start line`. */
function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^error:[0-9A-Fa-f]+:/, "");
}

function refuse(field: string, rule: string, cause: unknown): never {
  throw new BridgeError("BRIDGE_ERR_CONFIG", `${field} ${rule}`, { field, rule }, { cause });
}

/** Throws BRIDGE_ERR_CONFIG (`details.field`, `details.rule`) for the first setting whose material TLS cannot use. */
export function checkTlsMaterial(material: TlsMaterial, files: TlsFiles): void {
  try {
    createSecureContext({ cert: material.cert });
  } catch (err) {
    refuse(
      "mqtt.tls.certFile",
      `names a file that holds no PEM certificate (${files.certFile}: ${reasonOf(err)})`,
      err,
    );
  }
  try {
    createSecureContext({ key: material.key });
  } catch (err) {
    refuse(
      "mqtt.tls.keyFile",
      `names a file that holds no usable PEM private key (${files.keyFile}: ${reasonOf(err)})`,
      err,
    );
  }
  try {
    createSecureContext({ cert: material.cert, key: material.key });
  } catch (err) {
    refuse("mqtt.tls.keyFile", `is not the private key of mqtt.tls.certFile (${files.keyFile})`, err);
  }
  if (material.ca === undefined || files.caFile === undefined) return;
  try {
    createSecureContext({ ca: material.ca });
    // Node's TLS takes a bundle of no certificate at all without a word; X509Certificate reads its first one.
    new X509Certificate(material.ca);
  } catch (err) {
    refuse("mqtt.tls.caFile", `names a file that holds no PEM certificate (${files.caFile}: ${reasonOf(err)})`, err);
  }
}
