import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { localAddressPicker, planLocalAddresses } from "../../firmware-sim/fleet/local-addresses.ts";
import { createFleet } from "../../firmware-sim/index.ts";
import { runUntil } from "./helpers/wait.ts";
import { startAedes, type TestBroker } from "./helpers/aedes-broker.ts";

describe("source addresses", () => {
  it("leaves the choice to the OS for small fleets or remote brokers and spreads large loopback fleets", () => {
    assert.deepEqual(planLocalAddresses("127.0.0.1", 10_000, undefined), []);
    assert.deepEqual(planLocalAddresses("10.0.0.5", 100_000, undefined), []);
    assert.deepEqual(planLocalAddresses("127.0.0.1", 50_000, undefined), ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    assert.deepEqual(planLocalAddresses("127.0.0.1", 10, ["127.0.0.9"]), ["127.0.0.9"]);
  });

  it("assigns addresses round-robin and moves a device on when its address ran out of ports", () => {
    const addresses = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    assert.equal(localAddressPicker(addresses, 4)(0, undefined), "127.0.0.2");
    const pick = localAddressPicker(addresses, 2);
    assert.equal(pick(0, undefined), "127.0.0.3");
    assert.equal(pick(1, "ECONNREFUSED"), "127.0.0.3", "other errors keep the address");
    assert.equal(pick(2, "EADDRNOTAVAIL"), "127.0.0.1");
    assert.equal(localAddressPicker([], 0)(0, undefined), undefined);
  });

  describe("against aedes", () => {
    let broker: TestBroker;
    before(async () => {
      broker = await startAedes();
    });
    after(async () => {
      await broker.close();
    });

    it("connects from the given loopback addresses", async (t) => {
      if (process.platform !== "linux") {
        t.skip("only Linux routes all of 127.0.0.0/8 to loopback");
        return;
      }
      const remotes = new Set<string>();
      broker.broker.on("client", (client) => {
        const conn = client.conn as { remoteAddress?: string };
        if (conn.remoteAddress) remotes.add(conn.remoteAddress.replace(/^::ffff:/, ""));
      });
      const fleet = createFleet({
        url: broker.url,
        devices: 4,
        idPrefix: "src-",
        localAddresses: ["127.0.0.2", "127.0.0.3"],
        settleMs: 0,
      });
      const report = await runUntil(fleet, (s) => s.online === 4, "all devices online");
      assert.equal(report.violations, 0);
      assert.deepEqual([...remotes].sort(), ["127.0.0.2", "127.0.0.3"]);
    });
  });
});
