import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  deviceTopicFilters,
  formatDownTopic,
  formatUpTopic,
  isValidDeviceId,
  type DownChannel,
  parseTopic,
  type UpChannel,
  type CodecName,
} from "../../codecs/index.ts";
import { hasErrorCode } from "../../errors/index.ts";

describe("device ids", () => {
  test("accept 1 to 64 letters, digits, underscores, dots and dashes", () => {
    for (const id of ["a", "T-1", "dev_01.kitchen", "x".repeat(64), "...", ".a", "a..", "_", "-"]) {
      assert.ok(isValidDeviceId(id), id);
    }
  });

  test('refuse "." and "..": URL path normalisation turns /agents/.. into another path', () => {
    for (const id of [".", ".."]) {
      assert.equal(isValidDeviceId(id), false, id);
      assert.equal(parseTopic(`devices/${id}/up/telemetry`).ok, false, id);
      assert.throws(
        () => formatDownTopic(id, "cmd"),
        (e) => hasErrorCode(e, "BRIDGE_ERR_DEVICE_ID_INVALID"),
      );
    }
  });

  test("refuse empty, long, wildcard, slash, space, non-ASCII and non-string ids", () => {
    for (const id of ["", "x".repeat(65), "a+", "a#", "a/b", "a b", "thé", "a\u0000", 5, null, undefined]) {
      assert.equal(isValidDeviceId(id), false, String(id));
    }
  });
});

describe("parseTopic", () => {
  test("reads up topics with and without a codec suffix", () => {
    assert.deepStrictEqual(parseTopic("devices/t-1/up/telemetry"), {
      ok: true,
      topic: { direction: "up", deviceId: "t-1", channel: "telemetry" },
    });
    assert.deepStrictEqual(parseTopic("devices/t-1/up/hello/pb"), {
      ok: true,
      topic: { direction: "up", deviceId: "t-1", channel: "hello", codec: "pb" },
    });
  });

  test("reads down topics", () => {
    assert.deepStrictEqual(parseTopic("devices/t-1/down/cmd"), {
      ok: true,
      topic: { direction: "down", deviceId: "t-1", channel: "cmd" },
    });
  });

  const failures: [string, string][] = [
    ["devices/t-1/up", "BRIDGE_ERR_TOPIC_INVALID"],
    ["devices/t-1/up/telemetry/cbor/extra", "BRIDGE_ERR_TOPIC_INVALID"],
    ["things/t-1/up/telemetry", "BRIDGE_ERR_TOPIC_INVALID"],
    ["devices/t-1/sideways/telemetry", "BRIDGE_ERR_TOPIC_INVALID"],
    ["devices/t-1/down/cmd/cbor", "BRIDGE_ERR_TOPIC_INVALID"],
    ["devices//up/telemetry", "BRIDGE_ERR_DEVICE_ID_INVALID"],
    ["devices/+/up/telemetry", "BRIDGE_ERR_DEVICE_ID_INVALID"],
    ["devices/t-1/up/cmd", "BRIDGE_ERR_UNKNOWN_CHANNEL"],
    ["devices/t-1/down/hello", "BRIDGE_ERR_UNKNOWN_CHANNEL"],
    ["devices/t-1/up/__proto__", "BRIDGE_ERR_UNKNOWN_CHANNEL"],
    ["devices/t-1/up/telemetry/xml", "BRIDGE_ERR_UNKNOWN_CODEC"],
    ["devices/t-1/up/telemetry/", "BRIDGE_ERR_UNKNOWN_CODEC"],
  ];
  for (const [topic, code] of failures) {
    test(`refuses ${JSON.stringify(topic)} with ${code}`, () => {
      const result = parseTopic(topic);
      assert.equal(result.ok, false);
      if (!result.ok) assert.equal(result.code, code, result.message);
    });
  }
});

describe("formatting topics", () => {
  test("builds up and down topics that parse back to the same parts", () => {
    assert.equal(formatUpTopic("t-1", "state"), "devices/t-1/up/state");
    assert.equal(formatUpTopic("t-1", "state", "json"), "devices/t-1/up/state/json");
    assert.equal(formatDownTopic("t-1", "reason"), "devices/t-1/down/reason");
    assert.deepStrictEqual(parseTopic(formatUpTopic("a.b", "rpc", "pb")), {
      ok: true,
      topic: { direction: "up", deviceId: "a.b", channel: "rpc", codec: "pb" },
    });
    assert.deepStrictEqual(deviceTopicFilters("t-1"), {
      root: "devices/t-1/",
      up: "devices/t-1/up/#",
      down: "devices/t-1/down/#",
    });
  });

  test("throws typed errors for a bad id, channel or codec", () => {
    assert.throws(
      () => formatUpTopic("a/b", "state"),
      (e) => hasErrorCode(e, "BRIDGE_ERR_DEVICE_ID_INVALID"),
    );
    assert.throws(
      () => formatDownTopic("t", "hello" as DownChannel),
      (e) => hasErrorCode(e, "BRIDGE_ERR_UNKNOWN_CHANNEL"),
    );
    assert.throws(
      () => formatUpTopic("t", "cmd" as UpChannel),
      (e) => hasErrorCode(e, "BRIDGE_ERR_UNKNOWN_CHANNEL"),
    );
    assert.throws(
      () => formatUpTopic("t", "state", "xml" as CodecName),
      (e) => hasErrorCode(e, "BRIDGE_ERR_UNKNOWN_CODEC"),
    );
    assert.throws(
      () => deviceTopicFilters("#"),
      (e) => hasErrorCode(e, "BRIDGE_ERR_DEVICE_ID_INVALID"),
    );
  });
});
