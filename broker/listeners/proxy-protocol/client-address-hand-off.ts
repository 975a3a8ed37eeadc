/**
 * Behind a TLS-passthrough balancer the PROXY protocol header is read off the raw TCP connection, but the broker gets
 * the TLS socket Node's tls server makes over that connection once its handshake ends, and Node documents no way from
 * one to the other. Both report the connection's peer address and port, which no other open connection to the
 * listener has: the header's client address waits under that key from the header's end to the handshake's.
 *
 * Unique among open connections, but not among those Node still holds: a connection reset in the kernel while its reads
 * were paused closes in Node only later, and a balancer may reuse its source port for a new client meanwhile. So an
 * entry is removed by its own connection only (the entry is its marker), never by whoever closes under the same key
 * later, and the TLS socket takes it when its handshake ends. A TLS socket that finds nothing is refused by the
 * listener rather than counted under the balancer's address.
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
  /** Nothing under its peer address and port: the listener refuses it. */
  | { status: "missing" }
  /** It has no peer address: its connection was reset, and Node cannot read the peer any more. */
  | { status: "gone" };

/** One connection's address; the object itself marks whose it is. */
interface Entry {
  readonly address: string;
}

function peerKey(socket: PeerSocket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

export class ClientAddressHandOff {
  readonly #entries = new Map<string, Entry>();

  /**
   * Keeps `address`, the client the header of `raw` named, for the TLS socket over `raw`, until that socket takes it
   * or `raw` closes. Replaces what an older connection under the same key left (it is gone in the kernel).
   */
  keep(raw: PeerSocket, address: string): void {
    const key = peerKey(raw);
    const entry: Entry = { address };
    this.#entries.set(key, entry);
    raw.once("close", () => {
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
    });
  }

  /** Takes the address kept for the connection `secure` (a TLS socket whose handshake ended) runs over. */
  take(secure: PeerSocket): HandedAddress {
    if (secure.remoteAddress === undefined) return { status: "gone" };
    const key = peerKey(secure);
    const entry = this.#entries.get(key);
    if (entry === undefined) return { status: "missing" };
    this.#entries.delete(key);
    return { status: "found", address: entry.address };
  }

  /** Addresses held now. */
  get size(): number {
    return this.#entries.size;
  }
}
