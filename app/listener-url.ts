/**
 * The URL a client on this machine uses to reach one of the bridge's listeners: a listener bound to every address
 * (0.0.0.0, ::) is reached through loopback, one bound to a single address through that address, and an IPv6
 * address goes in brackets (RFC 3986 section 3.2.2).
 */

/** A host a local client can connect to for a listener bound to `host`. */
export function reachableHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "::1";
  return host;
}

/** `scheme://host:port` of a listener bound to `address`, as a local client reaches it. */
export function listenerUrl(scheme: string, address: { host: string; port: number }): string {
  const host = reachableHost(address.host);
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
}
