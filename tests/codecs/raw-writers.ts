/**
 * Writers of arbitrary (also invalid) maps in each codec, independent of the codecs under test, so the contract
 * suite can feed every decoder the same malformed frames. Protobuf's types are fixed by the .proto, so it has none:
 * its rejection cases are built from the generated message types instead.
 */
import { Encoder } from "cbor-x";

const cborX = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false });

export const rawWriters: Record<string, ((map: unknown) => Uint8Array) | undefined> = {
  json: (map) => new TextEncoder().encode(JSON.stringify(map)),
  cbor: (map) => new Uint8Array(cborX.encode(map)),
  pb: undefined,
};

/** Hex to bytes. */
export function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
}
