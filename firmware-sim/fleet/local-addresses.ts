/**
 * Source addresses for many connections to one broker address. A TCP connection is identified by its 4-tuple, so one
 * source address reaches at most one connection per ephemeral port (about 28000 on Linux by default) towards one
 * ip:port. On Linux the whole 127.0.0.0/8 answers on the loopback interface, so spreading connections over
 * 127.0.0.1, 127.0.0.2, ... multiplies the ports available.
 */

/** Connections planned per loopback source address when choosing automatically. */
export const CONNECTIONS_PER_ADDRESS = 20_000;

const EXHAUSTED = new Set(["EADDRNOTAVAIL", "EADDRINUSE"]);

/** The addresses to use: the given ones, or enough 127.0.0.x for a large fleet on loopback, or none (OS choice). */
export function planLocalAddresses(
  host: string,
  connections: number,
  given: readonly string[] | undefined,
): readonly string[] {
  if (given && given.length > 0) return given;
  if (!/^127\./.test(host) || connections <= CONNECTIONS_PER_ADDRESS) return [];
  const count = Math.min(254, Math.ceil(connections / CONNECTIONS_PER_ADDRESS));
  return Array.from({ length: count }, (_, i) => `127.0.0.${i + 1}`);
}

/**
 * A picker for device number `index`: its round-robin address, moving on to the next one after an attempt failed
 * because its address ran out of ports.
 */
export function localAddressPicker(
  addresses: readonly string[],
  index: number,
): (attempt: number, lastErrorCode: string | undefined) => string | undefined {
  if (addresses.length === 0) return () => undefined;
  let offset = 0;
  return (_attempt, lastErrorCode) => {
    if (lastErrorCode !== undefined && EXHAUSTED.has(lastErrorCode)) offset++;
    return addresses[(index + offset) % addresses.length];
  };
}
