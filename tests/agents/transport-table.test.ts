import assert from "node:assert/strict";
import { test } from "node:test";
import type { ConnectionTransport } from "../../agents/host.ts";
import { TransportTable } from "../../agents/transport-table.ts";

function transport(): ConnectionTransport {
  return { send() {}, sendProtocol() {}, close() {} };
}

test("one connection per agent is found by agent and connection id, and only by that connection id", () => {
  const table = new TransportTable();
  const a = transport();
  table.set("dev-1", "c1", a);
  assert.equal(table.get("dev-1", "c1"), a);
  assert.equal(table.get("dev-1", "c2"), undefined);
  assert.equal(table.get("dev-2", "c1"), undefined);
  const replaced = transport();
  table.set("dev-1", "c1", replaced);
  assert.equal(table.get("dev-1", "c1"), replaced, "the same connection id takes the new transport");
  assert.equal(table.agents, 1);
});

test("a second connection keeps both, and removing either leaves the other reachable", () => {
  const table = new TransportTable();
  const [a, b, c] = [transport(), transport(), transport()];
  table.set("dev-1", "mqtt", a);
  table.set("dev-1", "ws", b);
  assert.equal(table.get("dev-1", "mqtt"), a);
  assert.equal(table.get("dev-1", "ws"), b);
  table.delete("dev-1", "mqtt");
  assert.equal(table.get("dev-1", "mqtt"), undefined);
  assert.equal(table.get("dev-1", "ws"), b);
  table.set("dev-1", "ws2", c);
  assert.equal(table.get("dev-1", "ws"), b);
  assert.equal(table.get("dev-1", "ws2"), c);
  table.delete("dev-1", "ws");
  table.delete("dev-1", "ws2");
  assert.equal(table.agents, 0, "an agent without connections holds no entry");
  table.delete("dev-1", "ws2");
  table.delete("nobody", "x");
  assert.equal(table.agents, 0);
});

test("deleting an unknown connection id of a one-connection agent keeps its connection", () => {
  const table = new TransportTable();
  const a = transport();
  table.set("dev-1", "c1", a);
  table.delete("dev-1", "other");
  assert.equal(table.get("dev-1", "c1"), a);
});

test("take removes and returns every transport of one agent and no other's", () => {
  const table = new TransportTable();
  const [a, b, c] = [transport(), transport(), transport()];
  table.set("dev-1", "x", a);
  table.set("dev-1", "y", b);
  table.set("dev-2", "x", c);
  assert.deepEqual(new Set(table.take("dev-1")), new Set([a, b]));
  assert.deepEqual(table.take("dev-1"), []);
  assert.equal(table.get("dev-2", "x"), c);
  assert.deepEqual(table.take("dev-2"), [c]);
  assert.equal(table.agents, 0);
});
