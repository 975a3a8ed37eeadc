import { BridgeError } from "../errors/index.ts";
import { cborCodec } from "./cbor/cbor-codec.ts";
import type { Codec } from "./codec.ts";
import type { CodecName } from "./frames.ts";
import { jsonCodec } from "./json/json-codec.ts";
import { pbCodec } from "./pb/pb-codec.ts";

const CODECS: Readonly<Record<CodecName, Codec>> = { json: jsonCodec, cbor: cborCodec, pb: pbCodec };

/** Every codec, in CODEC_NAMES order (for contract tests and benchmarks). */
export const ALL_CODECS: readonly Codec[] = [jsonCodec, cborCodec, pbCodec];

/**
 * The codec named `name`. An unknown name is a programming or configuration fault: it throws
 * `BRIDGE_ERR_UNKNOWN_CODEC`. Check untrusted names with `isCodecName` first.
 *
 * @example
 * getCodec("cbor").encodeDown("cmd", { id: "c1", n: "reboot" });
 */
export function getCodec(name: CodecName): Codec {
  if (typeof name !== "string" || !Object.hasOwn(CODECS, name)) {
    throw new BridgeError("BRIDGE_ERR_UNKNOWN_CODEC", `no codec named ${String(name)}`, { field: "codec" });
  }
  return CODECS[name];
}
