import assert from "node:assert/strict";
import { test } from "node:test";
import { SubscriptionTable } from "../../broker/subscription-table.ts";

const REASON = "devices/d1/down/reason";

test("a topic gets the highest QoS of the filters that match it, and -1 when none does", () => {
  const table = new SubscriptionTable();
  assert.equal(table.grantedQos(REASON), -1);
  table.set("devices/d1/down/+", 0);
  assert.equal(table.grantedQos(REASON), 0);
  table.set("devices/d1/down/reason", 1);
  assert.equal(table.grantedQos(REASON), 1);
  assert.equal(table.grantedQos("devices/d1/down/cmd"), 0);
  assert.equal(table.grantedQos("devices/d2/down/reason"), -1);
});

test("the answer kept per topic follows every change of the filters", () => {
  const table = new SubscriptionTable();
  table.set("devices/d1/down/#", 1);
  assert.equal(table.grantedQos(REASON), 1);
  table.set("devices/d1/down/#", 0);
  assert.equal(table.grantedQos(REASON), 0, "a filter granted again at another QoS");
  table.delete("devices/d1/down/#");
  assert.equal(table.grantedQos(REASON), -1, "the only matching filter removed");
  table.delete("devices/d1/down/#");
  table.set("devices/d1/down/reason", 1);
  assert.equal(table.grantedQos(REASON), 1, "subscribed again");
});
