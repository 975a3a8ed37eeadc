/**
 * The PROXY protocol header a load balancer (HAProxy, AWS NLB, nginx stream, Traefik) writes at the start of a TCP
 * connection to name the client it forwards: v1, one text line, or v2, a binary block (HAProxy's proxy-protocol.txt).
 * This file finds where the header ends in the bytes received so far and bounds its size; proxy-protocol-js reads its
 * fields. The library parses a buffer it is given whole, so the framing (how many bytes make the header, when to stop
 * waiting) and the checks it leaves out (address syntax, port range, TLVs apart from the payload) are ours.
 */
import net from "node:net";
import {
  Command,
  INETProtocol,
  IPv4ProxyAddress,
  IPv6ProxyAddress,
  V1BinaryProxyProtocol,
  V2ProxyProtocol,
} from "proxy-protocol-js";

/** [proxy-protocol.txt 2.1] A v1 line is at most 107 bytes, its CRLF included. */
export const V1_MAX_HEADER_BYTES = 107;

/**
 * The largest v2 header accepted, TLVs included. The format allows 16 + 65535 bytes; balancers send far less (AWS'
 * VPC endpoint id, Azure's private link id, HAProxy's unique id and TLS facts, each tens of bytes), and every socket
 * waiting for its header may hold this much.
 */
export const V2_MAX_HEADER_BYTES = 4096;

/** [proxy-protocol.txt 2.2] The 12 bytes every v2 header starts with. */
const V2_SIGNATURE = Buffer.from("0d0a0d0a000d0a515549540a", "hex");
/** [2.2] Signature, version and command, family and transport, then a 16-bit length of what follows. */
const V2_FIXED_BYTES = 16;
const V1_SIGNATURE = Buffer.from("PROXY ", "latin1");
const V1_UNKNOWN = Buffer.from("PROXY UNKNOWN", "latin1");
const CRLF = Buffer.from("\r\n", "latin1");
/**
 * [2.2] The family and transport bytes a PROXY command may carry: UNSPEC, then TCP and UDP over IPv4, IPv6 and UNIX.
 * "Other values ... must be rejected as invalid by receivers"; the library takes any family with any transport.
 */
const V2_FAMILY_TRANSPORT = new Set([0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32]);

/** What the bytes received so far hold. */
export type ProxyHeaderScan =
  /** Not enough bytes yet to tell. */
  | { status: "incomplete" }
  /** Never a valid header, whatever follows; `tooLarge` when only its size is wrong. */
  | { status: "invalid"; detail: string; tooLarge: boolean }
  | {
      status: "complete";
      version: 1 | 2;
      /** Bytes of the header: the connection's own data starts after them. */
      headerBytes: number;
      /**
       * The client's address. Undefined where the header names none, and the connection counts under its peer's own
       * address ([2.1] `UNKNOWN`, [2.2] a `LOCAL` command such as a balancer's health check, or an address family
       * other than IPv4 and IPv6).
       */
      sourceAddress: string | undefined;
      /** [2.2] A v2 `LOCAL` command: the balancer speaks for itself. */
      local: boolean;
    };

function invalid(detail: string, tooLarge = false): ProxyHeaderScan {
  return { status: "invalid", detail, tooLarge };
}

/** True when the first `bytes.length` bytes of `bytes` agree with `signature` (as far as either goes). */
function startsLike(bytes: Uint8Array, signature: Uint8Array): boolean {
  const n = Math.min(bytes.length, signature.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== signature[i]) return false;
  return true;
}

/** The library throws objects that are not `Error`s; their `message` says what was wrong. */
function parseError(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === "string" ? message : String(err);
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

/** An IPv6 address from its 16 bytes, in the canonical text form (`2001:db8::1`, `::ffff:192.0.2.1`). */
function ipv6Text(bytes: readonly number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return new net.SocketAddress({ address: groups.join(":"), family: "ipv6" }).address;
}

/** An address as the header wrote it, in canonical form; undefined when it is not one of `family`. */
function canonicalAddress(text: string, family: 4 | 6): string | undefined {
  if (net.isIP(text) !== family) return undefined;
  return family === 4 ? text : new net.SocketAddress({ address: text, family: "ipv6" }).address;
}

function scanV1(bytes: Uint8Array): ProxyHeaderScan {
  if (!startsLike(bytes, V1_SIGNATURE)) return invalid("no PROXY protocol header");
  const end = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, V1_MAX_HEADER_BYTES)).indexOf(CRLF);
  if (end < 0) {
    if (bytes.length >= V1_MAX_HEADER_BYTES) {
      return invalid(`v1 header without CRLF in its first ${V1_MAX_HEADER_BYTES} bytes`, true);
    }
    return { status: "incomplete" };
  }
  const headerBytes = end + CRLF.length;
  const line = bytes.subarray(0, headerBytes);
  // [2.1] "UNKNOWN": the balancer cannot name the client; the rest of the line is to be ignored.
  if (startsLike(line, V1_UNKNOWN) && (line[V1_UNKNOWN.length] === 0x20 || line[V1_UNKNOWN.length] === 0x0d)) {
    return { status: "complete", version: 1, headerBytes, sourceAddress: undefined, local: false };
  }
  let parsed: V1BinaryProxyProtocol;
  try {
    parsed = V1BinaryProxyProtocol.parse(line);
  } catch (err) {
    return invalid(`malformed v1 header: ${parseError(err)}`);
  }
  const family = parsed.inetProtocol === INETProtocol.TCP4 ? 4 : 6;
  const source = canonicalAddress(parsed.source.ipAddress, family);
  if (source === undefined || canonicalAddress(parsed.destination.ipAddress, family) === undefined) {
    return invalid(`malformed v1 header: addresses are not ${parsed.inetProtocol} addresses`);
  }
  if (!isPort(parsed.source.port) || !isPort(parsed.destination.port)) {
    return invalid("malformed v1 header: a port is not from 0 to 65535");
  }
  return { status: "complete", version: 1, headerBytes, sourceAddress: source, local: false };
}

function scanV2(bytes: Uint8Array): ProxyHeaderScan {
  if (!startsLike(bytes, V2_SIGNATURE)) return invalid("no PROXY protocol header");
  if (bytes.length < V2_FIXED_BYTES) return { status: "incomplete" };
  const headerBytes = V2_FIXED_BYTES + ((bytes[14] << 8) | bytes[15]);
  if (headerBytes > V2_MAX_HEADER_BYTES) {
    return invalid(`v2 header of ${headerBytes} bytes, more than ${V2_MAX_HEADER_BYTES}`, true);
  }
  if (bytes.length < headerBytes) return { status: "incomplete" };
  let parsed: V2ProxyProtocol;
  try {
    // Exactly the header: what the library returns as `data` is then the TLVs, which the bridge does not use.
    parsed = V2ProxyProtocol.parse(bytes.subarray(0, headerBytes));
  } catch (err) {
    return invalid(`malformed v2 header: ${parseError(err)}`);
  }
  // [2.2] LOCAL: "the receiver must accept this connection as valid and must use the real connection endpoints".
  if (parsed.command === Command.LOCAL) {
    return { status: "complete", version: 2, headerBytes, sourceAddress: undefined, local: true };
  }
  if (!V2_FAMILY_TRANSPORT.has(bytes[13])) {
    return invalid(`malformed v2 header: family and transport byte 0x${bytes[13].toString(16)} is not defined`);
  }
  const address = parsed.proxyAddress;
  let sourceAddress: string | undefined;
  if (address instanceof IPv4ProxyAddress) sourceAddress = address.sourceAddress.address.join(".");
  else if (address instanceof IPv6ProxyAddress) sourceAddress = ipv6Text(address.sourceAddress.address);
  // [2.2] UNSPEC and UNIX: no IP address to count the client under; "the receiver ... may use the real endpoints".
  return { status: "complete", version: 2, headerBytes, sourceAddress, local: false };
}

/**
 * Reads the PROXY protocol header at the start of `bytes` (everything received so far on a connection).
 *
 * @example
 * const scan = scanProxyHeader(received);
 * if (scan.status === "complete") socket.unshift(received.subarray(scan.headerBytes));
 */
export function scanProxyHeader(bytes: Uint8Array): ProxyHeaderScan {
  if (bytes.length === 0) return { status: "incomplete" };
  if (bytes[0] === V2_SIGNATURE[0]) return scanV2(bytes);
  if (bytes[0] === V1_SIGNATURE[0]) return scanV1(bytes);
  return invalid(`no PROXY protocol header (the connection starts with byte 0x${bytes[0].toString(16)})`);
}
