import { Encoder } from "cbor-x";
import type { Value } from "../codecs/frames.ts";
import { BridgeError } from "../errors/bridge-error.ts";
import { AGENT_ERRORS } from "./errors.ts";

/**
 * Values (state, payloads, task input) are stored as plain CBOR rather than JSON because `Value` carries bigint and
 * Uint8Array, which JSON loses. Records are off so stored bytes never depend on encoder history.
 */
const encoder = new Encoder({ useRecords: false, mapsAsObjects: true });

/** Encodes a Value for storage; a non-Value (function, symbol, cycle) is a BRIDGE_ERR_VALUE_ENCODE fault. */
export function encodeValue(value: Value | null | undefined): Uint8Array {
  try {
    return encoder.encode(value ?? null);
  } catch (err) {
    throw new BridgeError(AGENT_ERRORS.VALUE_ENCODE, "value cannot be stored", {}, { cause: err });
  }
}

/** Decodes bytes written by `encodeValue`. */
export function decodeValue(bytes: Uint8Array | null | undefined): Value {
  if (bytes === null || bytes === undefined || bytes.length === 0) return null;
  return encoder.decode(bytes) as Value;
}
