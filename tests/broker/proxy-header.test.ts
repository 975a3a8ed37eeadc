import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type ProxyHeaderScan,
  scanProxyHeader,
  V1_MAX_HEADER_BYTES,
  V2_MAX_HEADER_BYTES,
} from "../../broker/listeners/proxy-protocol/index.ts";
import { tlv, v2Header, v2LocalHeader } from "./proxy-header-builders.ts";

function complete(scan: ProxyHeaderScan): Extract<ProxyHeaderScan, { status: "complete" }> {
  assert.equal(scan.status, "complete", JSON.stringify(scan));
  return scan as Extract<ProxyHeaderScan, { status: "complete" }>;
}

const MQTT_CONNECT_START = Buffer.from([0x10, 0x0c, 0x00, 0x04]);

describe("scanProxyHeader, v1", () => {
  test("reads the client address of a TCP4 or TCP6 line and where the connection's own bytes start", () => {
    const line = Buffer.from("PROXY TCP4 203.0.113.7 192.0.2.1 51000 1883\r\n");
    const scan = complete(scanProxyHeader(Buffer.concat([line, MQTT_CONNECT_START])));
    assert.deepEqual(scan, {
      status: "complete",
      version: 1,
      headerBytes: line.length,
      sourceAddress: "203.0.113.7",
      local: false,
    });
    const v6 = complete(scanProxyHeader(Buffer.from("PROXY TCP6 2001:0db8:0:0::7 2001:db8::1 51000 1883\r\n")));
    assert.equal(v6.sourceAddress, "2001:db8::7", "canonical form, so one client has one key");
  });

  test("UNKNOWN names no client: the peer's own address counts", () => {
    for (const text of ["PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"]) {
      const scan = complete(scanProxyHeader(Buffer.from(text)));
      assert.equal(scan.sourceAddress, undefined);
      assert.equal(scan.headerBytes, text.length);
    }
  });

  test("waits for more bytes while the line may still become a header, at most 107 bytes", () => {
    const line = "PROXY TCP4 203.0.113.7 192.0.2.1 51000 1883\r\n";
    for (let n = 0; n < line.length; n++) {
      assert.equal(scanProxyHeader(Buffer.from(line.slice(0, n))).status, "incomplete", `${n} bytes`);
    }
    const long = Buffer.from(`PROXY TCP4 ${"1".repeat(V1_MAX_HEADER_BYTES)}`);
    assert.deepEqual(
      { ...scanProxyHeader(long), detail: undefined },
      { status: "invalid", tooLarge: true, detail: undefined },
    );
  });

  test("refuses a line whose fields are not what the protocol allows", () => {
    for (const text of [
      "PROXY TCP4 999.0.113.7 192.0.2.1 51000 1883\r\n",
      "PROXY TCP4 2001:db8::7 192.0.2.1 51000 1883\r\n",
      "PROXY TCP6 203.0.113.7 2001:db8::1 51000 1883\r\n",
      "PROXY TCP4 203.0.113.7 192.0.2.1 70000 1883\r\n",
      "PROXY TCP4 203.0.113.7 192.0.2.1 51000\r\n",
      "PROXY TCP5 203.0.113.7 192.0.2.1 51000 1883\r\n",
      "PROXY TCP4  203.0.113.7 192.0.2.1 51000 1883\r\n",
      "PROXY TCP4 host.example 192.0.2.1 51000 1883\r\n",
      "PROXY UNKNOWNX\r\n",
    ]) {
      const scan = scanProxyHeader(Buffer.from(text));
      assert.equal(scan.status, "invalid", text);
      assert.equal((scan as { tooLarge: boolean }).tooLarge, false, text);
    }
  });
});

describe("scanProxyHeader, v2", () => {
  test("reads an IPv4 or IPv6 client address", () => {
    const v4 = v2Header("203.0.113.7");
    assert.deepEqual(complete(scanProxyHeader(Buffer.concat([v4, MQTT_CONNECT_START]))), {
      status: "complete",
      version: 2,
      headerBytes: v4.length,
      sourceAddress: "203.0.113.7",
      local: false,
    });
    assert.equal(complete(scanProxyHeader(v2Header("2001:db8::7"))).sourceAddress, "2001:db8::7");
    assert.equal(complete(scanProxyHeader(v2Header("::ffff:cb00:7107"))).sourceAddress, "::ffff:203.0.113.7");
  });

  test("skips TLVs: the connection's own bytes start after the length the header gives", () => {
    // PP2_TYPE_AWS (0xEA) with a VPC endpoint id, and PP2_TYPE_NOOP (0x04) as padding.
    const tlvs = Buffer.concat([tlv(0xea, Buffer.from("\x01vpce-0123456789abcdef")), tlv(0x04, Buffer.alloc(5))]);
    const header = v2Header("203.0.113.7", 51000, tlvs);
    const scan = complete(scanProxyHeader(Buffer.concat([header, MQTT_CONNECT_START])));
    assert.equal(scan.headerBytes, header.length);
    assert.equal(scan.sourceAddress, "203.0.113.7");
  });

  test("a LOCAL command names no client: the peer's own address counts", () => {
    const scan = complete(scanProxyHeader(v2LocalHeader()));
    assert.equal(scan.local, true);
    assert.equal(scan.sourceAddress, undefined);
    assert.equal(scan.headerBytes, 16);
  });

  test("waits for the whole header, and refuses one longer than its bound as soon as its length is read", () => {
    const header = v2Header("203.0.113.7", 51000, tlv(0x04, Buffer.alloc(100)));
    for (let n = 1; n < header.length; n++) {
      assert.equal(scanProxyHeader(header.subarray(0, n)).status, "incomplete", `${n} bytes`);
    }
    const huge = Buffer.from(header.subarray(0, 16));
    huge.writeUInt16BE(V2_MAX_HEADER_BYTES, 14);
    const scan = scanProxyHeader(huge);
    assert.equal(scan.status, "invalid");
    assert.equal((scan as { tooLarge: boolean }).tooLarge, true);
  });

  test("refuses a wrong version, a length shorter than the addresses, or a broken signature", () => {
    const header = v2Header("203.0.113.7");
    const version1 = Buffer.from(header);
    version1[12] = 0x11;
    const short = Buffer.from(header.subarray(0, 16 + 4));
    short.writeUInt16BE(4, 14);
    const signature = Buffer.from(header);
    signature[5] = 0x0e;
    for (const bad of [version1, short, signature]) assert.equal(scanProxyHeader(bad).status, "invalid");
  });

  test("a PROXY command with a family and transport byte the protocol does not define is refused", () => {
    // [2.2] Only 0x00, 0x11, 0x12, 0x21, 0x22, 0x31 and 0x32 are defined; "other values ... must be rejected as
    // invalid by receivers". 0x10 and 0x20 (IPv4, IPv6 with no transport) must not name a client.
    const header = Buffer.concat([v2Header("2001:db8::7"), Buffer.alloc(216 - 36)]);
    header.writeUInt16BE(216, 14);
    for (const byte of [0x01, 0x02, 0x10, 0x20, 0x30]) {
      const bad = Buffer.from(header);
      bad[13] = byte;
      assert.equal(scanProxyHeader(bad).status, "invalid", `family and transport 0x${byte.toString(16)}`);
    }
    // A LOCAL command ignores the byte ("the family ... is ignored").
    const local = Buffer.from(header);
    local[12] = 0x20;
    local[13] = 0x10;
    assert.equal(complete(scanProxyHeader(local)).local, true);
  });
});

describe("scanProxyHeader, no header", () => {
  test("plain MQTT or a TLS ClientHello is refused at its first byte, without waiting", () => {
    for (const first of [MQTT_CONNECT_START, Buffer.from([0x16, 0x03, 0x01])]) {
      const scan = scanProxyHeader(first.subarray(0, 1));
      assert.equal(scan.status, "invalid");
      assert.match((scan as { detail: string }).detail, /no PROXY protocol header/);
    }
    assert.equal(scanProxyHeader(Buffer.from("GET / HTTP/1.1\r\n")).status, "invalid");
    assert.equal(scanProxyHeader(Buffer.alloc(0)).status, "incomplete");
  });
});
