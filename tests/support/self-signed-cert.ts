/** A throwaway self-signed server certificate for the TLS tests, made with the `openssl` command. */
import { spawnSync } from "node:child_process";
import path from "node:path";

/** Where the certificate was written and whether openssl succeeded. */
export interface SelfSignedCert {
  /** PEM certificate, `cert.pem` in the given directory. */
  certFile: string;
  /** PEM private key (unencrypted RSA 2048), `key.pem` in the given directory. */
  keyFile: string;
  /** True when openssl exited with 0. */
  made: boolean;
  /** What openssl printed on stderr, for the failure message. */
  stderr: string;
}

/**
 * Runs `openssl req -x509` for a one-day certificate with the subject `/CN=<commonName>` and the given
 * subjectAltName (`IP:127.0.0.1`, `DNS:localhost,IP:127.0.0.1`). The caller checks `made` (or skips without openssl).
 */
export function makeSelfSignedCert(dir: string, commonName: string, subjectAltName: string): SelfSignedCert {
  const certFile = path.join(dir, "cert.pem");
  const keyFile = path.join(dir, "key.pem");
  const result = spawnSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "1"].concat([
      "-subj",
      `/CN=${commonName}`,
      "-addext",
      `subjectAltName=${subjectAltName}`,
    ]),
    { encoding: "utf8" },
  );
  return { certFile, keyFile, made: result.status === 0, stderr: result.stderr ?? "" };
}
