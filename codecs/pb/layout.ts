/**
 * Field numbers and wire types of bridge.proto, read from the parsed .proto once at load, so the hand-written
 * reader and writer follow the schema file rather than a copy of it. A .proto edit that the reader and writer
 * cannot follow (a renamed field, a changed type) fails here, at import, not on the wire.
 */
import { readFileSync } from "node:fs";
import protobuf from "protobufjs";
import type { Direction } from "../frames.ts";
import { DOWN_SCHEMAS, type FieldKind, type FrameSchema, UP_SCHEMAS } from "../schema/channels.ts";

/** The parsed bridge.proto, for callers that need the raw types (tests, tools). */
export const bridgeProtoRoot: protobuf.Root = protobuf.parse(
  readFileSync(new URL("../bridge.proto", import.meta.url), "utf8"),
).root;
bridgeProtoRoot.resolveAll();

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** How one frame field travels: its number, key byte(s) and the proto scalar type where it is one. */
export interface FieldLayout {
  readonly key: string;
  readonly kind: FieldKind;
  readonly required: boolean;
  readonly number: number;
  readonly wireType: number;
  /** The encoded tag, `(number << 3) | wireType` (all numbers here are below 16, so one byte). */
  readonly tag: number;
  /**
   * True for a required field declared proto3 `optional`: it is always written (even at its default) and an absent
   * one is refused, not read as the default. Used where the default would flip the meaning (`Ack.ok`: a missing
   * `ok` must not read as a failure report).
   */
  readonly explicitPresence: boolean;
  /** For `object` and `arrayOf` kinds: the nested message's layout. */
  readonly nested?: MessageLayout;
}

export interface MessageLayout {
  readonly schema: FrameSchema;
  readonly fields: readonly FieldLayout[];
  /** Field layout by field number, for the reader. */
  readonly byNumber: ReadonlyMap<number, FieldLayout>;
}

/** Proto scalar type each frame field kind must have. */
const PROTO_TYPE: Partial<Record<string, readonly string[]>> = {
  string: ["string"],
  id: ["string"],
  codec: ["string"],
  bool: ["bool"],
  number: ["double"],
  uint: ["uint64"],
  bytes: ["bytes"],
  value: ["Value"],
  map: ["MapValue"],
  list: ["ListValue"],
  names: ["string"],
  values: ["Value"],
};

function wireTypeOf(protoType: string): number {
  switch (protoType) {
    case "double":
      return WIRE_I64;
    case "bool":
    case "uint64":
    case "sint64":
      return WIRE_VARINT;
    default:
      return WIRE_LEN;
  }
}

function layoutOf(type: protobuf.Type, schema: FrameSchema): MessageLayout {
  const fields: FieldLayout[] = [];
  for (const spec of schema.fields) {
    const field = type.fields[spec.key];
    if (field === undefined) throw new Error(`bridge.proto: ${type.name} has no field ${spec.key}`);
    const kind = spec.kind;
    let nested: MessageLayout | undefined;
    if (typeof kind === "object") {
      const sub = field.resolvedType as protobuf.Type;
      if ("object" in kind) nested = layoutOf(sub, kind.object);
      else nested = layoutOf(sub.fields.records.resolvedType as protobuf.Type, kind.arrayOf);
    } else if (!PROTO_TYPE[kind]?.includes(field.type)) {
      throw new Error(`bridge.proto: ${type.name}.${spec.key} is ${field.type}, the codec expects ${PROTO_TYPE[kind]}`);
    }
    const wireType = wireTypeOf(field.type);
    // Only alias tables (strings) and positional readings (Values) are repeated fields; everything else is singular.
    const repeated = kind === "names" || kind === "values";
    if (field.id >= 16 || field.repeated !== repeated)
      throw new Error(
        `bridge.proto: ${type.name}.${spec.key} must be a ${repeated ? "repeated" : "single"} field below 16`,
      );
    fields.push({
      key: spec.key,
      kind,
      required: spec.required,
      number: field.id,
      wireType,
      tag: (field.id << 3) | wireType,
      explicitPresence: field.options?.proto3_optional === true,
      nested,
    });
  }
  return { schema, fields, byNumber: new Map(fields.map((f) => [f.number, f])) };
}

const frameType = bridgeProtoRoot.lookupType("agentbridge.v1.Frame");

function caseName(direction: Direction, channel: string): string {
  return `${direction}${channel.charAt(0).toUpperCase()}${channel.slice(1)}`;
}

/** The `Frame` oneof case of every channel: its field number and body layout. */
export interface CaseLayout {
  readonly name: string;
  readonly number: number;
  readonly body: MessageLayout;
}

function casesOf(
  direction: Direction,
  schemas: Readonly<Record<string, FrameSchema>>,
): ReadonlyMap<string, CaseLayout> {
  const out = new Map<string, CaseLayout>();
  for (const [channel, schema] of Object.entries(schemas)) {
    const name = caseName(direction, channel);
    const field = frameType.fields[name];
    if (field === undefined) throw new Error(`bridge.proto: Frame has no case ${name}`);
    out.set(channel, { name, number: field.id, body: layoutOf(field.resolvedType as protobuf.Type, schema) });
  }
  return out;
}

export const UP_CASES = casesOf("up", UP_SCHEMAS);
export const DOWN_CASES = casesOf("down", DOWN_SCHEMAS);

/** Frame case names by field number, for error messages. */
export const CASE_NAMES: ReadonlyMap<number, string> = new Map(
  frameType.fieldsArray.map((f) => [f.id, f.name] as [number, string]),
);

/** Field numbers of the Value messages; checked against the .proto below. */
export const VALUE = {
  null: 1,
  bool: 2,
  int: 3,
  double: 4,
  string: 5,
  bytes: 6,
  list: 7,
  map: 8,
  posBignum: 9,
  negBignum: 10,
  float: 11,
} as const;

const valueChecks: [string, string, number, string][] = [
  ["Value", "nullValue", VALUE.null, "NullValue"],
  ["Value", "boolValue", VALUE.bool, "bool"],
  ["Value", "intValue", VALUE.int, "sint64"],
  ["Value", "doubleValue", VALUE.double, "double"],
  ["Value", "stringValue", VALUE.string, "string"],
  ["Value", "bytesValue", VALUE.bytes, "bytes"],
  ["Value", "listValue", VALUE.list, "ListValue"],
  ["Value", "mapValue", VALUE.map, "MapValue"],
  ["Value", "posBignum", VALUE.posBignum, "bytes"],
  ["Value", "negBignum", VALUE.negBignum, "bytes"],
  ["Value", "floatValue", VALUE.float, "float"],
  ["ListValue", "values", 1, "Value"],
  ["MapValue", "entries", 1, "MapEntry"],
  ["MapEntry", "key", 1, "string"],
  ["MapEntry", "value", 2, "Value"],
];
for (const [typeName, fieldName, id, fieldType] of valueChecks) {
  const field = bridgeProtoRoot.lookupType(`agentbridge.v1.${typeName}`).fields[fieldName];
  if (field === undefined || field.id !== id || field.type !== fieldType) {
    throw new Error(`bridge.proto: ${typeName}.${fieldName} must be ${fieldType} = ${id}`);
  }
}
