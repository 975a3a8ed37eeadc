/**
 * PROXY protocol headers for the broker tests, as a load balancer writes them: v1 lines by hand, v2 blocks with
 * proxy-protocol-js' builder (the library the broker parses with), TLVs appended by hand.
 */
import net from "node:net";
import {
  Command,
  IPv4Address,
  IPv4ProxyAddress,
  IPv6Address,
  IPv6ProxyAddress,
  TransportProtocol,
  UnspecProxyAddress,
  V2ProxyProtocol,
} from "proxy-protocol-js";

/** A v1 line for a TCP client at `source` (TCP4 or TCP6 by its form). */
export function v1Header(source: string, sourcePort = 51000): Buffer {
  const family = source.includes(":") ? "TCP6" : "TCP4";
  const destination = family === "TCP4" ? "127.0.0.1" : "::1";
  return Buffer.from(`PROXY ${family} ${source} ${destination} ${sourcePort} 1883\r\n`, "latin1");
}

/** A v2 PROXY header for a TCP client at `source`:`sourcePort`, built by the library the broker parses with. */
export function v2Header(source: string, sourcePort = 51000, tlvs: Uint8Array = new Uint8Array()): Buffer {
  const ipv4 = source.split(".");
  const address = net.isIPv4(source)
    ? new IPv4ProxyAddress(
        IPv4Address.createFrom(ipv4.map(Number)),
        sourcePort,
        IPv4Address.createFrom([127, 0, 0, 1]),
        1883,
      )
    : new IPv6ProxyAddress(IPv6Address.createFrom(ipv6Bytes(source)), sourcePort, IPv6Address.createFrom([]), 1883);
  const header = Buffer.from(new V2ProxyProtocol(Command.PROXY, TransportProtocol.STREAM, address).build());
  return withTlvs(header, tlvs);
}

/** A v2 LOCAL header, as HAProxy's health checks send (`check-send-proxy`). */
export function v2LocalHeader(): Buffer {
  return Buffer.from(new V2ProxyProtocol(Command.LOCAL, TransportProtocol.UNSPEC, new UnspecProxyAddress()).build());
}

/** `header` with TLVs appended and its length field grown to cover them. */
export function withTlvs(header: Buffer, tlvs: Uint8Array): Buffer {
  const out = Buffer.concat([header, tlvs]);
  out.writeUInt16BE(out.length - 16, 14);
  return out;
}

/** One TLV: type, 16-bit length, value. */
export function tlv(type: number, value: Uint8Array): Buffer {
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(value.length, 1);
  return Buffer.concat([head, value]);
}

function ipv6Bytes(text: string): number[] {
  const [head, tail] = text.split("::");
  const groups = (part: string | undefined): number[] =>
    part === undefined || part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16));
  const front = groups(head);
  const back = groups(tail);
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}
