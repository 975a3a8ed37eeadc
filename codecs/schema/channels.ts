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
  /**
   * A list of 1 to `maxItems` distinct metric names (text of 1 to `MAX_METRIC_NAME_LENGTH` characters, never
   * `__proto__`): the hello's alias table. Never empty, because protobuf cannot tell an empty repeated field from an
   * absent one.
   */
  | "names"
  /**
   * A list of 1 to `maxItems` `Value`s: positional readings. Protobuf writes it as `repeated Value`, without the
   * ListValue wrapper that `list` has (two bytes less per frame), and so, like `names`, it is never empty.
   */
  | "values"
  | { object: FrameSchema }
  | { arrayOf: FrameSchema };

export interface FieldSpec {
  readonly key: string;
  readonly kind: FieldKind;
  readonly required: boolean;
  /** For `list`, `names` and `values` fields: the most items accepted. Unbounded when absent. */
  readonly maxItems?: number;
}

export interface FrameSchema {
  readonly name: string;
  readonly fields: readonly FieldSpec[];
  /** At least one of these keys must be present (telemetry needs readings or a SenML pack). */
  readonly atLeastOne?: readonly string[];
}

const req = (key: string, kind: FieldKind): FieldSpec => ({ key, kind, required: true });
const opt = (key: string, kind: FieldKind): FieldSpec => ({ key, kind, required: false });
const optBounded = (key: string, kind: FieldKind, maxItems: number): FieldSpec => ({
  key,
  kind,
  required: false,
  maxItems,
});

/** Most metric names in a hello's alias table, and so most positional readings (`rv`) in one telemetry frame. */
export const MAX_METRIC_ALIASES = 256;
/** Longest firmware text kept from a hello (the agent's profile, the registry), in UTF-16 code units. */
export const MAX_FIRMWARE_LENGTH = 128;
/** Longest metric name in an alias table, in UTF-16 code units (the DeviceAgent's own limit on metric names). */
export const MAX_METRIC_NAME_LENGTH = 128;

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
      optBounded("metrics", "names", MAX_METRIC_ALIASES),
    ],
  },
  telemetry: {
    name: "up/telemetry",
    fields: [
      opt("ts", "uint"),
      opt("r", "map"),
      opt("senml", { arrayOf: SENML_RECORD_SCHEMA }),
      optBounded("rv", "values", MAX_METRIC_ALIASES),
    ],
    atLeastOne: ["r", "senml", "rv"],
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
