/**
 * The client address of an MQTT WebSocket that reaches the bridge through reverse proxies the operator trusts. Behind a
 * proxy every connection comes from the proxy's address, so every device would share one failed-authentication
 * allowance (broker/connect-guard) and one address in the logs. A proxy says whom it forwards for in
 * `X-Forwarded-For`, appending the address it saw to the right; anyone can write that header, so it is read only when
 * the peer is a configured proxy, and only as far, from the right, as the hops are proxies too (as nginx's realip
 * module with `real_ip_recursive on`, or Express's `trust proxy` with a list of addresses).
 */
import net from "node:net";
import { mappedIpv4 } from "../connect-guard/address-key.ts";

/** An entry of the trusted list: an IP address, or a CIDR range of them. */
interface ProxyRange {
  address: string;
  family: "ipv4" | "ipv6";
  /** Prefix length; undefined for a single address. */
  prefix: number | undefined;
}

/** What a trusted-list entry must be, for the errors that refuse one. */
export const PROXY_RANGE_RULE =
  "an IP address or CIDR range (10.0.0.0/8, 2001:db8::/32; an IPv4-mapped address takes a prefix of 96 to 128)";

/** `::ffff:0:0/96`: the IPv4-mapped IPv6 addresses, however they are written. */
const IPV4_MAPPED = new net.BlockList();
IPV4_MAPPED.addSubnet("::ffff:0:0", 96, "ipv6");

/**
 * Reads a trusted-list entry (`192.0.2.1`, `10.0.0.0/8`, `2001:db8::/32`); undefined when it is neither form. An
 * IPv4-mapped address (`::ffff:10.0.0.1`, as Node reports a dual-stack peer) with a prefix under 96 is refused too: its
 * prefix counts IPv6 bits, so `::ffff:10.0.0.1/32`, which reads as one host, is `::/32`, holding every IPv4 address,
 * and any client could then name its own address in `X-Forwarded-For`.
 */
export function parseProxyRange(entry: string): ProxyRange | undefined {
  const [address, prefixText, extra] = entry.trim().split("/");
  const version = net.isIP(address);
  if (version === 0 || extra !== undefined || address.includes("%")) return undefined;
  const family = version === 4 ? "ipv4" : "ipv6";
  if (prefixText === undefined) return { address, family, prefix: undefined };
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (!(prefix >= 0 && prefix <= (version === 4 ? 32 : 128))) return undefined;
  if (family === "ipv6" && prefix < 96 && IPV4_MAPPED.check(address, "ipv6")) return undefined;
  return { address, family, prefix };
}

/** The address of one `X-Forwarded-For` hop, which some proxies write with a port (`192.0.2.1:4711`, `[::1]:443`). */
function hopAddress(hop: string): string | undefined {
  let text = hop.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed !== null) text = bracketed[1];
  else if (/^[\d.]+:\d+$/.test(text)) text = text.slice(0, text.indexOf(":"));
  return net.isIP(text) === 0 ? undefined : text;
}

export class TrustedProxies {
  /**
   * IPv4 entries (an IPv4-mapped entry as the IPv4 range it writes) and IPv6 ones, kept apart: Node's BlockList
   * matches an IPv4 address against IPv6 subnets by its mapped form, so in one list an IPv6 range holding
   * `::ffff:0:0/96` (`::/0`, `::/64`) trusted every IPv4 client, each of which could then name its own address.
   */
  readonly #v4 = new net.BlockList();
  readonly #v6 = new net.BlockList();
  readonly #empty: boolean;

  /** @param entries addresses and CIDR ranges; throws a RangeError naming an entry that is neither. */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const range = parseProxyRange(entry);
      if (range === undefined) throw new RangeError(`not ${PROXY_RANGE_RULE}: ${JSON.stringify(entry)}`);
      const ipv4 = range.family === "ipv6" ? mappedIpv4(range.address) : range.address;
      // parseProxyRange refused a mapped entry under /96: its prefix counts the 96 bits of the mapping.
      if (ipv4 !== undefined && range.family === "ipv6")
        add(this.#v4, ipv4, "ipv4", range.prefix === undefined ? undefined : range.prefix - 96);
      else if (range.family === "ipv4") add(this.#v4, range.address, "ipv4", range.prefix);
      else add(this.#v6, range.address, "ipv6", range.prefix);
    }
    this.#empty = entries.length === 0;
  }

  /** True when `address` is one of the trusted proxies (an IPv4-mapped address as the IPv4 one it carries). */
  trusts(address: string): boolean {
    const plain = address.split("%")[0];
    const version = net.isIP(plain);
    if (version === 4) return this.#v4.check(plain, "ipv4");
    if (version !== 6) return false;
    const ipv4 = mappedIpv4(plain);
    return ipv4 === undefined ? this.#v6.check(plain, "ipv6") : this.#v4.check(ipv4, "ipv4");
  }

  /**
   * The address a connection from `peer` counts under. `peer` itself unless it is a trusted proxy; then the hops of
   * `forwardedFor` are read from the right, each standing for the client of the one after it, up to the first that is
   * not a trusted proxy. A hop that is not an address ends the walk at the proxy that wrote it: what lies left of it
   * cannot be told from what its client made up.
   */
  clientAddress(peer: string, forwardedFor: string | string[] | undefined): string {
    if (this.#empty || forwardedFor === undefined || !this.trusts(peer)) return peer;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor).split(",");
    let client = peer;
    for (let i = hops.length - 1; i >= 0 && this.trusts(client); i--) {
      const hop = hopAddress(hops[i]);
      if (hop === undefined) break;
      client = hop;
    }
    return client;
  }
}

function add(list: net.BlockList, address: string, family: "ipv4" | "ipv6", prefix: number | undefined): void {
  if (prefix === undefined) list.addAddress(address, family);
  else list.addSubnet(address, prefix, family);
}
