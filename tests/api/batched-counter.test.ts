import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Registry } from "prom-client";
import { BatchedCounter } from "../../app/metrics/batched-counter.ts";

describe("batched counter", () => {
  test("a scrape shows every increment made before it, by label values, and later scrapes only add the new ones", async () => {
    const registry = new Registry();
    const counter = new BatchedCounter({
      name: "t_messages_total",
      help: "test",
      labelNames: ["channel", "codec"],
      registers: [registry],
    });
    counter.inc("telemetry", "cbor");
    counter.inc("telemetry", "cbor");
    counter.inc("hello", "json", 3);
    let text = await registry.metrics();
    assert.match(text, /t_messages_total\{channel="telemetry",codec="cbor"\} 2/);
    assert.match(text, /t_messages_total\{channel="hello",codec="json"\} 3/);
    counter.inc("telemetry", "cbor");
    text = await registry.metrics();
    assert.match(text, /t_messages_total\{channel="telemetry",codec="cbor"\} 3/);
    assert.match(text, /t_messages_total\{channel="hello",codec="json"\} 3/);
  });

  test("a counter without labels adds its amounts and reads the same through get()", async () => {
    const registry = new Registry();
    const counter = new BatchedCounter({ name: "t_commits_total", help: "test", registers: [registry] });
    counter.inc();
    counter.inc("", "", 4);
    const value = await counter.counter.get();
    assert.deepEqual(
      value.values.map((v) => v.value),
      [5],
    );
  });

  test("one label keeps its own series per value", async () => {
    const registry = new Registry();
    const counter = new BatchedCounter({
      name: "t_codes_total",
      help: "test",
      labelNames: ["code"],
      registers: [registry],
    });
    counter.inc("A");
    counter.inc("B");
    counter.inc("A");
    const text = await registry.metrics();
    assert.match(text, /t_codes_total\{code="A"\} 2/);
    assert.match(text, /t_codes_total\{code="B"\} 1/);
  });
});
