/**
 * The key failed authentications are counted under: an IPv4 address as it is, an IPv6 address by its /64 prefix.
 * One IPv6 subscriber usually holds a whole /64 (2^64 addresses), so counting single IPv6 addresses would let one
 * attacker take a fresh allowance for every CONNECT. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a
 * dual-stack listener reports, or `::ffff:c000:201`) counts as the IPv4 address it carries.
 */
import net from "node:net";

const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** The eight 16-bit groups of an IPv6 address (without zone), or undefined when it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  if (!net.isIPv6(address)) return undefined;
  let text = address.split("%")[0];
  // A trailing dotted IPv4 part (`::ffff:1.2.3.4`, `64:ff9b::1.2.3.4`) stands for the last two groups.
  const dotted = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const parse = (part: string | undefined): number[] =>
    part === undefined || part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16));
  const front = parse(head);
  const back = parse(tail);
  const zeros = tail === undefined ? [] : new Array<number>(8 - front.length - back.length).fill(0);
  return [...front, ...zeros, ...back];
}

/** True for the groups of `::ffff:0:0/96`, the IPv4-mapped addresses. */
function isMappedIpv4(groups: number[]): boolean {
  return groups[5] === 0xffff && groups.slice(0, 5).every((g) => g === 0);
}

/** The dotted IPv4 address the last two groups of a mapped address carry. */
function carriedIpv4(groups: number[]): string {
  return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join(".");
}

/**
 * The IPv4 address an IPv4-mapped IPv6 address carries, however it is written (`::ffff:192.0.2.1`,
 * `::ffff:c000:201`, `0:0:0:0:0:ffff:192.0.2.1`); undefined for any other address.
 */
export function mappedIpv4(address: string): string | undefined {
  const mapped = MAPPED_IPV4.exec(address);
  if (mapped !== null) return mapped[1];
  const groups = ipv6Groups(address);
  return groups !== undefined && isMappedIpv4(groups) ? carriedIpv4(groups) : undefined;
}

/** The counting key of a peer address; anything that is not an IP address counts as itself. */
export function addressKey(remoteAddress: string): string {
  const mapped = MAPPED_IPV4.exec(remoteAddress);
  if (mapped !== null) return mapped[1];
  const groups = ipv6Groups(remoteAddress);
  if (groups === undefined) return remoteAddress;
  // The same mapping written in hex groups (`::ffff:c000:201`), as a proxy may forward it: counted by /64, every
  // IPv4 client written so would share the one allowance of `0:0:0:0::/64`.
  if (isMappedIpv4(groups)) return carriedIpv4(groups);
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}
