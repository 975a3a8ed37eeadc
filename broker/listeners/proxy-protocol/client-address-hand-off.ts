/**
 * Behind a TLS-passthrough balancer the PROXY protocol header is read off the raw TCP connection, but the broker gets
 * the TLS socket Node's tls server makes over that connection once its handshake ends, and Node documents no way from
 * one to the other. Both report the connection's peer address and port, which no other open connection to the
 * listener has: the header's client address waits under that key from the header's end to the handshake's.
 */
import type { EventEmitter } from "node:events";

/** What the hand-off reads of a socket: its peer, and the end of a raw one. */
export interface PeerSocket extends Pick<EventEmitter, "once"> {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
}

/** What the hand-off held for a TLS socket whose handshake ended. */
export type HandedAddress =
  /** The client address of the header read on its connection. */
  | { status: "found"; address: string }
  /** Nothing under its peer address and port. */
  | { status: "missing" };

function peerKey(socket: PeerSocket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

export class ClientAddressHandOff {
  readonly #addresses = new Map<string, string>();

  /** Keeps `address`, the client the header of `raw` named, for the TLS socket over `raw`, until `raw` closes. */
  keep(raw: PeerSocket, address: string): void {
    const key = peerKey(raw);
    this.#addresses.set(key, address);
    raw.once("close", () => this.#addresses.delete(key));
  }

  /** The address kept for the connection `secure` (a TLS socket whose handshake ended) runs over. */
  take(secure: PeerSocket): HandedAddress {
    const address = this.#addresses.get(peerKey(secure));
    return address === undefined ? { status: "missing" } : { status: "found", address };
  }

  /** Addresses held now. */
  get size(): number {
    return this.#addresses.size;
  }
}
