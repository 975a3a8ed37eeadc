/** The PROXY protocol (v1 and v2) in front of the TCP and TLS listeners. */
export { ClientAddressHandOff, type HandedAddress, type PeerSocket } from "./client-address-hand-off.ts";
export {
  createProxyGate,
  type ProxyGate,
  type ProxyGateOptions,
  type ProxyRefusal,
  type ProxyRefusalReason,
} from "./proxy-gate.ts";
export { type ProxyHeaderScan, scanProxyHeader, V1_MAX_HEADER_BYTES, V2_MAX_HEADER_BYTES } from "./proxy-header.ts";
export { type ProxyHeaderOutcome, type ProxyHeaderRefusal, readProxyHeader } from "./read-proxy-header.ts";
