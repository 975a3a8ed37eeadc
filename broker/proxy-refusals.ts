/**
 * What the broker does with a connection the PROXY protocol gate of a TCP or TLS listener closes
 * (listeners/proxy-protocol/), or that its TLS listener closes for a header's address lost on the way to the TLS socket:
 * count it (BRIDGE_ERR_PROXY_UNTRUSTED, BRIDGE_ERR_PROXY_HEADER) and warn at most once
 * per 10 s per source address, so a balancer that stopped sending headers is named in the log while a scanner sweeping
 * the port from many addresses does not flood it.
 */
import type { Clock } from "./clock.ts";
import { BrokerErrorCode } from "./errors.ts";
import type { ProxyGateOptions, ProxyRefusal } from "./listeners/proxy-protocol/index.ts";
import type { BrokerTransportKind, ObserverHub } from "./observer.ts";
import type { BrokerLogger, ResolvedProxyProtocol } from "./options.ts";
import { ThrottledWarningPerKey } from "./throttled-warning-per-key.ts";

export const PROXY_UNTRUSTED_WARNING =
  "MQTT connection closed: its source is not a trusted PROXY protocol sender (proxyProtocol.trustedSources)";
export const PROXY_HEADER_WARNING = "MQTT connection closed: no valid PROXY protocol header from a trusted balancer";
export const PROXY_ADDRESS_LOST_WARNING =
  "MQTT over TLS connection closed: the client address its PROXY protocol header named was lost before its handshake ended";

export interface ProxyRefusalDeps {
  hub: ObserverHub;
  logger: BrokerLogger;
  clock: Clock;
}

/** The gate options of one listener; undefined (no gate) when its `proxyProtocol` is off. */
export function proxyGateOptions(
  deps: ProxyRefusalDeps,
  transport: BrokerTransportKind,
  proxyProtocol: ResolvedProxyProtocol | undefined,
): ProxyGateOptions | undefined {
  if (proxyProtocol === undefined) return undefined;
  const untrusted = new ThrottledWarningPerKey(deps.logger, deps.clock, PROXY_UNTRUSTED_WARNING);
  const badHeader = new ThrottledWarningPerKey(deps.logger, deps.clock, PROXY_HEADER_WARNING);
  const addressLost = new ThrottledWarningPerKey(deps.logger, deps.clock, PROXY_ADDRESS_LOST_WARNING);
  return {
    trustedSources: proxyProtocol.trustedSources,
    headerTimeoutMs: proxyProtocol.headerTimeoutMs,
    clock: deps.clock,
    onRefused: ({ peer, reason, detail }: ProxyRefusal) => {
      const facts = { transport, remoteAddress: peer, reason, detail };
      if (reason === "untrusted") {
        deps.hub.limitBreach(BrokerErrorCode.proxyUntrusted);
        untrusted.note(peer, facts);
      } else if (reason === "address-lost") {
        // Its header was valid, but it no longer reaches the session: refused for its header all the same.
        deps.hub.limitBreach(BrokerErrorCode.proxyHeader);
        addressLost.note(peer, facts);
      } else {
        deps.hub.limitBreach(BrokerErrorCode.proxyHeader);
        badHeader.note(peer, facts);
      }
    },
  };
}
