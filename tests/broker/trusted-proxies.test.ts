import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createBroker } from "../../broker/index.ts";
import { parseProxyRange, TrustedProxies } from "../../broker/listeners/trusted-proxies.ts";
import { connackCode, RecordingHost, serveUpgrades, startTestBroker } from "./helpers.ts";

describe("TrustedProxies", () => {
  test("reads addresses and CIDR ranges of both families, and nothing else", () => {
    assert.deepEqual(parseProxyRange("192.0.2.1"), { address: "192.0.2.1", family: "ipv4", prefix: undefined });
    assert.deepEqual(parseProxyRange("10.0.0.0/8"), { address: "10.0.0.0", family: "ipv4", prefix: 8 });
    assert.deepEqual(parseProxyRange("2001:db8::/32"), { address: "2001:db8::", family: "ipv6", prefix: 32 });
    for (const bad of [
      "",
      "proxy.local",
      "10.0.0.0/33",
      "::/129",
      "10.0.0.0/",
      "10.0.0.0/8/8",
      "10.0.0.0/-1",
      "fe80::1%eth0",
    ]) {
      assert.equal(parseProxyRange(bad), undefined, bad);
    }
    assert.throws(() => new TrustedProxies(["10.0.0.1", "nope"]), /nope/);
  });

  test("an IPv4-mapped entry takes a prefix of 96 or more: a shorter one would trust every IPv4 client", () => {
    // `::ffff:10.0.0.1/32` reads as one host but is the IPv6 range ::/32, which holds every IPv4-mapped address: any
    // client could then name its own address in the header.
    for (const bad of ["::ffff:10.0.0.1/32", "::ffff:10.0.0.0/8", "::ffff:a00:0/95", "0:0:0:0:0:ffff:10.0.0.0/16"]) {
      assert.equal(parseProxyRange(bad), undefined, bad);
      assert.throws(() => new TrustedProxies([bad]), /IPv4-mapped address takes a prefix of 96 to 128/, bad);
    }
    const mapped = new TrustedProxies(["::ffff:10.0.0.0/104", "::ffff:192.0.2.1", "::ffff:c633:6401/128"]);
    assert.equal(mapped.trusts("10.1.2.3"), true);
    assert.equal(mapped.trusts("::ffff:10.1.2.3"), true);
    assert.equal(mapped.trusts("192.0.2.1"), true);
    assert.equal(mapped.trusts("198.51.100.1"), true);
    assert.equal(mapped.trusts("11.0.0.1"), false);
    assert.equal(mapped.clientAddress("198.51.100.7", "203.0.113.66"), "198.51.100.7", "an untrusted peer's header");
  });

  test("an IPv6 range trusts IPv6 peers only, even one that holds the IPv4-mapped block (::/0, ::/64)", () => {
    // Node's BlockList matches an IPv4 address against IPv6 subnets by its mapped form: `::/0` written for "every IPv6
    // proxy" trusted every IPv4 client too, and each could then name its own address in the header or PROXY line.
    const v6 = new TrustedProxies(["::/0", "::1/64", "2001:db8::/32"]);
    assert.equal(v6.trusts("2001:db8::7"), true);
    assert.equal(v6.trusts("::1"), true);
    for (const ipv4 of ["10.0.0.1", "::ffff:10.0.0.1", "203.0.113.9"]) assert.equal(v6.trusts(ipv4), false, ipv4);
    assert.equal(v6.clientAddress("203.0.113.9", "198.51.100.1"), "203.0.113.9");
    const both = new TrustedProxies(["::/0", "0.0.0.0/0"]);
    assert.equal(both.trusts("10.0.0.1"), true, "IPv4 peers are trusted by an IPv4 entry");
  });

  test("the header counts only when the peer is a trusted proxy", () => {
    const proxies = new TrustedProxies(["10.0.0.1"]);
    assert.equal(proxies.clientAddress("10.0.0.1", "203.0.113.9"), "203.0.113.9");
    assert.equal(proxies.clientAddress("::ffff:10.0.0.1", "203.0.113.9"), "203.0.113.9", "dual-stack peer");
    assert.equal(proxies.clientAddress("198.51.100.7", "203.0.113.9"), "198.51.100.7", "a client's own header");
    assert.equal(proxies.clientAddress("10.0.0.1", undefined), "10.0.0.1");
    assert.equal(new TrustedProxies([]).clientAddress("10.0.0.1", "203.0.113.9"), "10.0.0.1", "off by default");
  });

  test("hops are read from the right up to the first that is not a trusted proxy, so a client cannot pick its address", () => {
    const proxies = new TrustedProxies(["10.0.0.0/8", "2001:db8:ffff::/48"]);
    // The client wrote 192.0.2.66 itself; the edge proxy 10.1.1.1 appended what it saw, then 10.2.2.2 its own peer.
    assert.equal(proxies.clientAddress("10.3.3.3", "192.0.2.66, 203.0.113.9, 10.1.1.1, 10.2.2.2"), "203.0.113.9");
    assert.equal(proxies.clientAddress("10.3.3.3", ["192.0.2.66", "203.0.113.9, 10.1.1.1"]), "203.0.113.9");
    assert.equal(proxies.clientAddress("2001:db8:ffff::1", "2001:db8:1::5"), "2001:db8:1::5");
    // Every hop a proxy: the leftmost is the client.
    assert.equal(proxies.clientAddress("10.3.3.3", "10.9.9.9, 10.1.1.1"), "10.9.9.9");
  });

  test("hops with ports are read; a hop that is not an address stops the walk at the proxy that wrote it", () => {
    const proxies = new TrustedProxies(["10.0.0.1", "10.0.0.2"]);
    assert.equal(proxies.clientAddress("10.0.0.1", "203.0.113.9:4711"), "203.0.113.9");
    assert.equal(proxies.clientAddress("10.0.0.1", "[2001:db8::9]:443"), "2001:db8::9");
    assert.equal(proxies.clientAddress("10.0.0.1", "[2001:db8::9]"), "2001:db8::9");
    assert.equal(proxies.clientAddress("10.0.0.1", "203.0.113.9, unknown"), "10.0.0.1");
    assert.equal(proxies.clientAddress("10.0.0.1", "203.0.113.9, garbage, 10.0.0.2"), "10.0.0.2");
    assert.equal(proxies.clientAddress("10.0.0.1", ""), "10.0.0.1");
  });

  test("an invalid entry is refused at construction, naming the field", () => {
    assert.throws(
      () => createBroker({ host: new RecordingHost(), dataDir: "x", websocket: { trustedProxies: ["10.0.0.0/99"] } }),
      (err: { code?: string; details?: { field?: string } }) =>
        err.code === "BRIDGE_ERR_BROKER_CONFIG" && err.details?.field === "websocket.trustedProxies",
    );
  });
});

describe("MQTT over WebSocket behind a trusted reverse proxy", () => {
  const attempt = (url: string, forwardedFor: string, password: string, id = "proxied") =>
    connackCode(url, {
      clientId: id,
      username: id,
      password,
      wsOptions: { headers: { "X-Forwarded-For": forwardedFor } },
    });

  test("each client behind the proxy has its own failure allowance, and its agent sees its address", async () => {
    const tb = await startTestBroker({
      websocket: { path: "/mqtt", trustedProxies: ["127.0.0.1"] },
      limits: { authFailuresPerAddress: 1, authBlockMs: 60_000 },
    });
    const server = await serveUpgrades(tb.broker);
    try {
      const secret = await tb.addDevice("proxied");
      assert.equal(await attempt(server.url, "203.0.113.1", "wrong"), 4);
      assert.equal(await attempt(server.url, "203.0.113.1", secret), 5, "that client is blocked");
      assert.equal(await attempt(server.url, "203.0.113.2", secret), 0, "its neighbour behind the proxy is not");
      assert.equal(tb.host.opens("proxied").at(-1)?.init.context?.remoteAddress, "203.0.113.2");
    } finally {
      await tb.close();
      await server.close();
    }
  });

  test("without trusted proxies the header is ignored: all share the peer's address", async () => {
    const tb = await startTestBroker({ limits: { authFailuresPerAddress: 1, authBlockMs: 60_000 } });
    const server = await serveUpgrades(tb.broker);
    try {
      const secret = await tb.addDevice("proxied");
      assert.equal(await attempt(server.url, "203.0.113.1", "wrong"), 4);
      assert.equal(await attempt(server.url, "203.0.113.2", secret), 5, "blocked as 127.0.0.1");
    } finally {
      await tb.close();
      await server.close();
    }
  });
});
