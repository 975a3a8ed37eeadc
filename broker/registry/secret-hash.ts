/**
 * Per-device secrets stored as scrypt hashes. The format carries its own parameters
 * (`scrypt$N$r$p$salt$hash`, base64url) so the cost can be raised later without breaking stored rows.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

const KEY_BYTES = 32;
const SALT_BYTES = 16;

/** scrypt parameters. N is the CPU/memory cost (a power of two). */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { N: 16384, r: 8, p: 1 };

/**
 * The most a hash's parameters may ask for: N*r*p at most 2^22 (32 times the default's work, about 1.5 s on a small
 * gateway) and 128*N*r at most 256 MiB (8 times the default's memory). The parameters of a stored hash are read from
 * the registry file on every CONNECT: unbounded, a tampered or corrupted row held a thread-pool thread for minutes
 * (p = 8192) or asked for gigabytes, on every reconnect of the device.
 */
const MAX_SCRYPT_WORK = 2 ** 22;
const MAX_SCRYPT_MEMORY_BYTES = 2 ** 28;

/** True when scrypt accepts `params` (N a power of two, below 2^(16r)) and they are within the bounds above. */
export function scryptParamsWithinBounds({ N, r, p }: ScryptParams): boolean {
  if (![N, r, p].every((n) => Number.isSafeInteger(n) && n > 0)) return false;
  if (N * r * p > MAX_SCRYPT_WORK || 128 * N * r > MAX_SCRYPT_MEMORY_BYTES) return false;
  return N >= 2 && (N & (N - 1)) === 0 && N < 2 ** (16 * r);
}

function derive(secret: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  // 128 * r * (N + p) bytes is what scrypt needs; give it headroom over Node's 32 MiB default.
  const maxmem = 256 * params.r * (params.N + params.p);
  return new Promise((resolve, reject) => {
    // The async form runs on the libuv thread pool, so verifying a burst of CONNECTs never blocks the event loop.
    scrypt(secret, salt, KEY_BYTES, { N: params.N, r: params.r, p: params.p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** Hashes a secret with a fresh random salt. */
export async function hashSecret(secret: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(secret, salt, params);
  return ["scrypt", params.N, params.r, params.p, salt.toString("base64url"), key.toString("base64url")].join("$");
}

function parse(stored: string): { params: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return undefined;
  const params = { N: Number(parts[1]), r: Number(parts[2]), p: Number(parts[3]) };
  if (!scryptParamsWithinBounds(params)) return undefined;
  return { params, salt: Buffer.from(parts[4], "base64url"), key: Buffer.from(parts[5], "base64url") };
}

/** True when `secret` matches `stored`. Compares in constant time; a malformed stored hash never matches. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parsed = parse(stored);
  if (!parsed) return false;
  const key = await derive(secret, parsed.salt, parsed.params);
  return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
}

/**
 * Spends the same work as a real verification. Used for unknown devices so response time does not reveal
 * which device ids exist.
 */
export async function burnVerification(params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<void> {
  await derive("unknown-device", Buffer.alloc(SALT_BYTES), params);
}

/** A new device secret: 24 random bytes as base64url (32 characters, 192 bits). */
export function generateSecret(): string {
  return randomBytes(24).toString("base64url");
}
