/**
 * Reads protobuf frames strictly, driven by the layout read from bridge.proto. It reads what any proto3 encoder writes
 * (fields in any order, unknown fields skipped, a repeated singular field's last value winning) and refuses with a
 * typed fault: a known field with the wrong wire type, a Value with no kind or two kinds, a map entry without a
 * value, duplicate or `__proto__` map keys, nesting deeper than the limit, and whatever the wire reader refuses. It
 * recurses only into known messages, so the depth limit also bounds its stack.
 */
import { DUPLICATE_MAP_KEY } from "../schema/fault.ts";
import { bignumValue, MAX_INTEGER_DIGITS } from "../schema/value.ts";
import { type MessageLayout, VALUE, WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT } from "./layout.ts";
import { WireReader } from "./wire-reader.ts";

const r = new WireReader();
let maxDepth = 16;

function tooDeep(depth: number): void {
  if (depth > maxDepth) throw r.fault("BRIDGE_ERR_FRAME_TOO_DEEP", `nested deeper than ${maxDepth}`);
}

/** Reads one `Value` message ending at `end`. */
function value(end: number, depth: number): unknown {
  let kind = 0;
  let result: unknown;
  while (r.pos < end) {
    const tag = r.tag();
    const number = tag >>> 3;
    if (number > VALUE.float) {
      r.skip(tag);
      continue;
    }
    if (kind !== 0 && kind !== number) throw r.fault("BRIDGE_ERR_FRAME_INVALID", "Value sets more than one kind");
    kind = number;
    switch (number) {
      case VALUE.null:
        r.expectWire(tag, WIRE_VARINT);
        r.varint();
        result = null;
        break;
      case VALUE.bool:
        r.expectWire(tag, WIRE_VARINT);
        result = r.varint() !== 0;
        break;
      case VALUE.int:
        r.expectWire(tag, WIRE_VARINT);
        result = r.sint64();
        break;
      case VALUE.double:
      case VALUE.float: {
        const wide = number === VALUE.double;
        r.expectWire(tag, wide ? WIRE_I64 : WIRE_I32);
        const n = wide ? r.double(end) : r.float(end);
        if (!Number.isFinite(n)) throw r.fault("BRIDGE_ERR_FRAME_INVALID", "NaN and infinities are not accepted");
        result = n === 0 ? 0 : n;
        break;
      }
      case VALUE.string:
        r.expectWire(tag, WIRE_LEN);
        result = r.text();
        break;
      case VALUE.bytes:
        r.expectWire(tag, WIRE_LEN);
        result = r.byteString();
        break;
      case VALUE.posBignum:
      case VALUE.negBignum: {
        r.expectWire(tag, WIRE_LEN);
        const n = bignumValue(r.byteString(), number === VALUE.negBignum);
        if (n === undefined) {
          throw r.fault("BRIDGE_ERR_FRAME_INVALID", `an integer of more than ${MAX_INTEGER_DIGITS} digits`);
        }
        result = n;
        break;
      }
      default: {
        // list_value or map_value
        r.expectWire(tag, WIRE_LEN);
        tooDeep(depth);
        const inner = r.lengthEnd();
        result = number === VALUE.list ? list(inner, depth) : map(inner, depth);
      }
    }
  }
  r.endAt(end);
  if (kind === 0) throw r.fault("BRIDGE_ERR_FRAME_INVALID", "Value sets no kind");
  return result;
}

/** ListValue body ending at `end`, for a list at nesting `depth`. */
function list(end: number, depth: number): unknown[] {
  const out: unknown[] = [];
  while (r.pos < end) {
    const tag = r.tag();
    if (tag >>> 3 !== 1) {
      r.skip(tag);
      continue;
    }
    r.expectWire(tag, WIRE_LEN);
    r.path.push(out.length);
    out.push(value(r.lengthEnd(), depth + 1));
    r.path.pop();
  }
  r.endAt(end);
  return out;
}

/** MapValue body ending at `end`, for a map at nesting `depth`. */
function map(end: number, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  while (r.pos < end) {
    const tag = r.tag();
    if (tag >>> 3 !== 1) {
      r.skip(tag);
      continue;
    }
    r.expectWire(tag, WIRE_LEN);
    const entryEnd = r.lengthEnd();
    let key = "";
    let entry: unknown;
    let hasValue = false;
    while (r.pos < entryEnd) {
      const t = r.tag();
      if (t >>> 3 === 1) {
        r.expectWire(t, WIRE_LEN);
        key = r.text();
      } else if (t >>> 3 === 2) {
        r.expectWire(t, WIRE_LEN);
        const valueEnd = r.lengthEnd();
        // The key normally comes first; a value before its key is read under an empty path segment.
        r.path.push(key);
        entry = value(valueEnd, depth + 1);
        r.path.pop();
        hasValue = true;
      } else {
        r.skip(t);
      }
    }
    r.endAt(entryEnd);
    r.path.push(key);
    if (!hasValue) throw r.fault("BRIDGE_ERR_FRAME_INVALID", "map entry without a value");
    if (key === "__proto__") throw r.fault("BRIDGE_ERR_FRAME_INVALID", "the map key __proto__ is not accepted");
    if (Object.hasOwn(out, key)) throw r.fault("BRIDGE_ERR_FRAME_INVALID", DUPLICATE_MAP_KEY);
    r.path.pop();
    out[key] = entry;
  }
  r.endAt(end);
  return out;
}

/** A frame message (or nested message) ending at `end`, at nesting `depth` (the frame itself is 1). */
function message(layout: MessageLayout, end: number, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  while (r.pos < end) {
    const tag = r.tag();
    const f = layout.byNumber.get(tag >>> 3);
    if (f === undefined) {
      r.skip(tag);
      continue;
    }
    r.expectWire(tag, f.wireType);
    r.path.push(f.key);
    const kind = f.kind;
    switch (kind) {
      case "string":
      case "id":
      case "codec":
        out[f.key] = r.text();
        break;
      case "bool":
        out[f.key] = r.varint() !== 0;
        break;
      case "uint":
        out[f.key] = r.varint();
        break;
      case "number":
        out[f.key] = r.double(end);
        break;
      case "bytes":
        out[f.key] = r.byteString();
        break;
      case "names": {
        // `repeated string`: each occurrence appends (unpacked; strings are never packed).
        const names = (out[f.key] as string[] | undefined) ?? [];
        names.push(r.text());
        out[f.key] = names;
        break;
      }
      case "value":
        out[f.key] = value(r.lengthEnd(), depth + 1);
        break;
      case "values": {
        // `repeated Value`: each occurrence appends; items sit at the depth a `list` field's items do.
        tooDeep(depth + 1);
        const items = (out[f.key] as unknown[] | undefined) ?? [];
        r.path.push(items.length);
        items.push(value(r.lengthEnd(), depth + 2));
        r.path.pop();
        out[f.key] = items;
        break;
      }
      default: {
        tooDeep(depth + 1);
        const inner = r.lengthEnd();
        if (kind === "map") out[f.key] = map(inner, depth + 1);
        else if (kind === "list") out[f.key] = list(inner, depth + 1);
        else if ("object" in kind) out[f.key] = message(f.nested!, inner, depth + 1);
        else out[f.key] = records(f.nested!, inner, depth + 1);
      }
    }
    r.path.pop();
  }
  r.endAt(end);
  // Implicit presence (proto3): an absent required scalar reads as its type's default, unless the field is declared
  // `optional`; then its absence stays visible and checkFrame refuses the frame, as CBOR and JSON do.
  for (const f of layout.fields) {
    if (!f.required || f.explicitPresence || Object.hasOwn(out, f.key)) continue;
    if (f.kind === "string" || f.kind === "id" || f.kind === "codec") out[f.key] = "";
    else if (f.kind === "bool") out[f.key] = false;
    else if (f.kind === "uint") out[f.key] = 0;
  }
  return out;
}

/** SenmlPack body: `repeated SenmlRecord records = 1`. */
function records(layout: MessageLayout, end: number, depth: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  while (r.pos < end) {
    const tag = r.tag();
    if (tag >>> 3 !== 1) {
      r.skip(tag);
      continue;
    }
    r.expectWire(tag, WIRE_LEN);
    tooDeep(depth + 1);
    r.path.push(out.length);
    out.push(message(layout, r.lengthEnd(), depth + 1));
    r.path.pop();
  }
  r.endAt(end);
  return out;
}

/**
 * Reads a `Frame` that must hold exactly the case `caseNumber` and returns its body as a map for `checkFrame`.
 * `describe` names a case number (empty for numbers that are no case), `topic` the expected channel, for the error
 * message. Throws DecodeFault.
 */
export function readPbFrame(
  input: Uint8Array,
  caseNumber: number,
  layout: MessageLayout,
  depthLimit: number,
  describe: (n: number) => string,
  topic: string,
): Record<string, unknown> {
  r.reset(input);
  maxDepth = depthLimit;
  try {
    let body: Record<string, unknown> | undefined;
    let other: number | undefined;
    while (r.pos < input.length) {
      const tag = r.tag();
      const number = tag >>> 3;
      if (number === caseNumber) {
        r.expectWire(tag, WIRE_LEN);
        body = message(layout, r.lengthEnd(), 1);
      } else {
        // Every case of Frame is a message: another channel's case with another wire type is malformed too.
        if (describe(number) !== "") {
          r.expectWire(tag, WIRE_LEN);
          other = number;
        }
        r.skip(tag);
      }
    }
    if (body === undefined || other !== undefined) {
      const held = [body === undefined ? "" : describe(caseNumber), other === undefined ? "" : describe(other)];
      const holds = held.filter((x) => x !== "").join(" and ") || "no body";
      throw r.fault("BRIDGE_ERR_FRAME_INVALID", `protobuf Frame holds ${holds}, the topic says ${topic}`);
    }
    return body;
  } finally {
    r.release();
  }
}
