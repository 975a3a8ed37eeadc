/**
 * Certificates for the broker's TLS listener tests: a fresh self-signed one made with openssl, or the checked-in one
 * (fixtures/README.md) where openssl is missing or a test needs no fresh one.
 */
import fs from "node:fs";
import path from "node:path";
import { makeSelfSignedCert } from "../support/self-signed-cert.ts";

/** A PEM certificate and its unencrypted private key, as the broker's `tls` options take them. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

const fixtures = path.join(import.meta.dirname, "fixtures");

/** The checked-in self-signed certificate (CN=localhost, SAN localhost and 127.0.0.1) and its key. */
export function fixtureTlsMaterial(): TlsMaterial {
  return {
    cert: fs.readFileSync(path.join(fixtures, "server-cert.pem")),
    key: fs.readFileSync(path.join(fixtures, "server-key.pem")),
  };
}

/** A fresh self-signed certificate for localhost and 127.0.0.1 written to `dir`; without openssl, the fixture's. */
export function tlsMaterial(dir: string): TlsMaterial {
  const { certFile, keyFile, made } = makeSelfSignedCert(dir, "localhost", "DNS:localhost,IP:127.0.0.1");
  if (made) return { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) };
  return fixtureTlsMaterial();
}
