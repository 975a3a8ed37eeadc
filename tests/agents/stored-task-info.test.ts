/** A task hook's TaskInfo built from a stored row: its input is decoded on first read, once per object. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { storedTaskInfo } from "../../agents/stored-task-info.ts";
import { encodeValue } from "../../agents/value-codec.ts";

describe("storedTaskInfo", () => {
  const bytes = Uint8Array.from(encodeValue({ turnId: "t1", history: 2 }));

  test("decodes nothing until the input is read", () => {
    // Bytes no CBOR decoder accepts: building the object must not touch them, reading the input must.
    const info = storedTaskInfo("id1", "kind", Uint8Array.of(0xff, 0xff, 0xff), 5);
    assert.deepEqual([info.id, info.kind, info.startedAt], ["id1", "kind", 5]);
    assert.throws(() => info.input);
  });

  test("reads as a plain TaskInfo: the same object on every read, own and enumerable, assignable", () => {
    const info = storedTaskInfo("id2", "kind", bytes, 7);
    assert.deepEqual(info.input, { turnId: "t1", history: 2 });
    assert.equal(info.input, info.input);
    assert.deepEqual({ ...info }, { id: "id2", kind: "kind", input: { turnId: "t1", history: 2 }, startedAt: 7 });
    assert.equal(JSON.stringify(info), '{"id":"id2","kind":"kind","input":{"turnId":"t1","history":2},"startedAt":7}');
    info.input = "replaced";
    assert.equal(info.input, "replaced");
  });

  test("gives each object an input of its own, as separate reads of the row would", () => {
    const a = storedTaskInfo("id3", "kind", bytes, 1);
    const b = storedTaskInfo("id3", "kind", bytes, 1);
    (a.input as { turnId: string }).turnId = "changed by a hook";
    assert.deepEqual(b.input, { turnId: "t1", history: 2 });
  });

  test("an empty or missing input reads as null", () => {
    assert.equal(storedTaskInfo("id4", "kind", null, 1).input, null);
    assert.equal(storedTaskInfo("id4", "kind", new Uint8Array(0), 1).input, null);
  });
});
