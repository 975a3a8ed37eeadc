/**
 * The field schema of every channel, as plain data. One table drives validation in all three codecs, the CBOR and
 * JSON key order on the wire, and the docs (docs/protocol.md mirrors it).
 */
import type { DownChannel, UpChannel } from "../frames.ts";

/** What a field may hold. `value`, `map` and `list` hold arbitrary `Value`s checked by the codec's own walk. */
export type FieldKind =
  | "string"
  /** A non-empty string of at most 256 characters: request and command ids, method and command names. */
  | "id"
  | "bool"
  /** A finite number. */
  | "number"
  /** A non-negative safe integer (versions, sequence numbers, ms timestamps, byte counts). */
  | "uint"
  | "codec"
  | "bytes"
  | "value"
  | "map"
  | "list"
  | { object: FrameSchema }
  | { arrayOf: FrameSchema };

export interface FieldSpec {
  readonly key: string;
  readonly kind: FieldKind;
  readonly required: boolean;
}

export interface FrameSchema {
  readonly name: string;
  readonly fields: readonly FieldSpec[];
  /** At least one of these keys must be present (telemetry needs readings or a SenML pack). */
  readonly atLeastOne?: readonly string[];
}

const req = (key: string, kind: FieldKind): FieldSpec => ({ key, kind, required: true });
const opt = (key: string, kind: FieldKind): FieldSpec => ({ key, kind, required: false });

export const SENML_RECORD_SCHEMA: FrameSchema = {
  name: "senml record",
  fields: [
    opt("bn", "string"),
    opt("bt", "number"),
    opt("n", "string"),
    opt("u", "string"),
    opt("v", "number"),
    opt("vs", "string"),
    opt("vb", "bool"),
    opt("vd", "bytes"),
    opt("t", "number"),
  ],
};

export const USAGE_SCHEMA: FrameSchema = {
  name: "usage",
  fields: [req("p", "uint"), req("c", "uint"), opt("k", "uint")],
};

export const UP_SCHEMAS: { readonly [C in UpChannel]: FrameSchema } = {
  hello: {
    name: "up/hello",
    fields: [
      req("fw", "string"),
      opt("codec", "codec"),
      opt("sync", "bool"),
      opt("stream", "bool"),
      opt("maxFrame", "uint"),
    ],
  },
  telemetry: {
    name: "up/telemetry",
    fields: [opt("ts", "uint"), opt("r", "map"), opt("senml", { arrayOf: SENML_RECORD_SCHEMA })],
    atLeastOne: ["r", "senml"],
  },
  state: { name: "up/state", fields: [req("v", "uint"), req("s", "map")] },
  ack: { name: "up/ack", fields: [req("id", "id"), req("ok", "bool"), opt("res", "value"), opt("err", "string")] },
  rpc: { name: "up/rpc", fields: [req("id", "id"), req("m", "id"), opt("a", "list")] },
  reason: {
    name: "up/reason",
    fields: [req("id", "id"), req("q", "string"), opt("max", "uint"), opt("stream", "bool")],
  },
};

export const DOWN_SCHEMAS: { readonly [C in DownChannel]: FrameSchema } = {
  identity: {
    name: "down/identity",
    fields: [req("name", "string"), req("id", "string"), req("pv", "uint"), req("t", "uint")],
  },
  state: { name: "down/state", fields: [req("v", "uint"), req("d", "map"), opt("full", "bool")] },
  cmd: { name: "down/cmd", fields: [req("id", "id"), req("n", "id"), opt("a", "value"), opt("exp", "uint")] },
  rpc: { name: "down/rpc", fields: [req("id", "id"), req("ok", "bool"), opt("res", "value"), opt("err", "string")] },
  reason: {
    name: "down/reason",
    fields: [
      req("id", "id"),
      req("seq", "uint"),
      opt("text", "string"),
      opt("fin", "bool"),
      opt("fr", "string"),
      opt("u", { object: USAGE_SCHEMA }),
    ],
  },
  error: {
    name: "down/error",
    fields: [req("code", "string"), req("msg", "string"), opt("id", "string"), opt("v", "uint")],
  },
};

/** Longest accepted `id`-kind string, in UTF-16 code units. */
export const MAX_ID_LENGTH = 256;
