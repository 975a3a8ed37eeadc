/**
 * Schema-driven conversion between checked frames and the per-channel messages of bridge.proto. Field names in the
 * .proto are the frame keys (protobufjs turns `max_frame` into `maxFrame`), so one table (schema/channels.ts)
 * drives all three codecs.
 */
import type { FrameSchema } from "../../../codecs/schema/channels.ts";
import { DecodeFault, joinPath } from "../../../codecs/schema/fault.ts";
import {
  type PbObject,
  listFromPb,
  plainBytes,
  listToPb,
  longToInteger,
  mapFromPb,
  mapToPb,
  valueFromPb,
  valueToPb,
} from "./pb-value.ts";

function enter(depth: number, maxDepth: number, field: string): void {
  if (depth > maxDepth) {
    throw new DecodeFault("BRIDGE_ERR_FRAME_TOO_DEEP", `${field}: nested deeper than ${maxDepth}`, field);
  }
}

const NO_PRESENCE: ReadonlySet<string> = new Set();

/**
 * Builds the message object of a checked frame at nesting `depth` (the frame itself is 1). `presence` names the
 * required fields declared proto3 `optional` (`ok` of Ack and RpcResult): they are given to protobufjs even at their
 * default, which it then writes.
 */
export function frameToPb(
  schema: FrameSchema,
  frame: Record<string, unknown>,
  depth: number,
  maxDepth: number,
  field: string,
  presence: ReadonlySet<string> = NO_PRESENCE,
): PbObject {
  const out: PbObject = {};
  for (const spec of schema.fields) {
    const value = frame[spec.key];
    if (value === undefined) continue;
    const path = joinPath(field, spec.key);
    const kind = spec.kind;
    switch (kind) {
      case "string":
      case "id":
      case "codec":
      case "bool":
      case "uint":
        // Implicit presence (proto3): a required field at its default value is simply not written.
        if (spec.required && !presence.has(spec.key) && (value === "" || value === false || value === 0)) continue;
        out[spec.key] = value;
        break;
      case "number":
      case "bytes":
      case "names":
        out[spec.key] = value;
        break;
      case "value":
        out[spec.key] = valueToPb(value, depth + 1, maxDepth, path);
        break;
      case "map":
        enter(depth + 1, maxDepth, path);
        out[spec.key] = mapToPb(value as Record<string, unknown>, depth + 1, maxDepth, path);
        break;
      case "list":
        enter(depth + 1, maxDepth, path);
        out[spec.key] = listToPb(value as unknown[], depth + 1, maxDepth, path);
        break;
      case "values":
        // `repeated Value`: the ListValue's items without the wrapper.
        enter(depth + 1, maxDepth, path);
        out[spec.key] = listToPb(value as unknown[], depth + 1, maxDepth, path).values;
        break;
      default:
        enter(depth + 1, maxDepth, path);
        if ("object" in kind) {
          out[spec.key] = frameToPb(kind.object, value as Record<string, unknown>, depth + 1, maxDepth, path);
        } else {
          enter(depth + 2, maxDepth, path);
          const records = (value as Record<string, unknown>[]).map((item, i) =>
            frameToPb(kind.arrayOf, item, depth + 2, maxDepth, joinPath(path, i)),
          );
          out[spec.key] = { records };
        }
    }
  }
  return out;
}

/** Reads a decoded message into a frame map for `checkFrame`, at nesting `depth` (the frame itself is 1). */
export function frameFromPb(
  schema: FrameSchema,
  msg: PbObject,
  depth: number,
  maxDepth: number,
  field: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const spec of schema.fields) {
    const own = Object.hasOwn(msg, spec.key) && msg[spec.key] !== null && msg[spec.key] !== undefined;
    // Required scalars have implicit presence: absent reads as the type's default, as in every proto3 runtime.
    const raw = own ? msg[spec.key] : spec.required ? msg[spec.key] : undefined;
    if (raw === undefined || raw === null) continue;
    const path = joinPath(field, spec.key);
    const kind = spec.kind;
    switch (kind) {
      case "uint":
        out[spec.key] = longToInteger(raw, true);
        break;
      case "string":
      case "id":
      case "codec":
      case "bool":
      case "number":
        out[spec.key] = raw;
        break;
      case "bytes":
        out[spec.key] = plainBytes(raw);
        break;
      case "names":
        // protobufjs reads an absent repeated field as []; proto3 cannot tell the two apart.
        if ((raw as unknown[]).length > 0) out[spec.key] = raw;
        break;
      case "value":
        out[spec.key] = valueFromPb(raw as PbObject, depth + 1, maxDepth, path);
        break;
      case "map":
        enter(depth + 1, maxDepth, path);
        out[spec.key] = mapFromPb(raw as PbObject, depth + 1, maxDepth, path);
        break;
      case "list":
        enter(depth + 1, maxDepth, path);
        out[spec.key] = listFromPb(raw as PbObject, depth + 1, maxDepth, path);
        break;
      case "values":
        // protobufjs reads an absent repeated field as []; proto3 cannot tell the two apart.
        if ((raw as unknown[]).length === 0) break;
        enter(depth + 1, maxDepth, path);
        out[spec.key] = listFromPb({ values: raw }, depth + 1, maxDepth, path);
        break;
      default:
        enter(depth + 1, maxDepth, path);
        if ("object" in kind) {
          out[spec.key] = frameFromPb(kind.object, raw as PbObject, depth + 1, maxDepth, path);
        } else {
          enter(depth + 2, maxDepth, path);
          const records = ((raw as PbObject).records ?? []) as PbObject[];
          out[spec.key] = records.map((item, i) =>
            frameFromPb(kind.arrayOf, item, depth + 2, maxDepth, joinPath(path, i)),
          );
        }
    }
  }
  return out;
}
