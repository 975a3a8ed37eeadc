/**
 * Codec benchmark (`npm run bench:codecs`): bytes per frame and encode+decode round trips per second for CBOR and
 * protobuf, each as a ratio to JSON measured in the same run, on realistic frames. cbor-x (no validation, its
 * own number rules) is shown as a reference point for the bridge's strict CBOR codec. A second table sets the
 * compact telemetry form (positional readings through a metric alias table) against the device's natural JSON
 * frame (readings keyed by name), which is what a device would send without aliases.
 *
 * Options: --slices N (default 40), --slice-ms N (default 25). The contenders take turns in short slices of process
 * CPU time, so a change in machine load hits them alike; each figure is a contender's total round trips over its
 * total CPU time.
 */
import { machineLine } from "../machine.ts";
import { Encoder } from "cbor-x";
import { type Codec, cborCodec, type DownChannel, jsonCodec, pbCodec, type UpChannel } from "../../codecs/index.ts";
import {
  helloWithAliases,
  reasonChunk,
  shadowDelta,
  telemetry,
  telemetryAliased,
  telemetryAliasedFloat64,
  telemetryFloat32,
  telemetrySensorFloat32,
  telemetrySensorJson,
} from "./frames.ts";
import { interleave, positiveOption, type Run } from "./cpu-slices.ts";

interface Case {
  name: string;
  direction: "up" | "down";
  channel: UpChannel | DownChannel;
  frame: object;
}

const CASES: Case[] = [
  { name: "telemetry, 8 readings", direction: "up", channel: "telemetry", frame: telemetry },
  { name: "telemetry, 8 readings as float32", direction: "up", channel: "telemetry", frame: telemetryFloat32 },
  { name: "sensor telemetry, named, decimals", direction: "up", channel: "telemetry", frame: telemetrySensorJson },
  { name: "sensor telemetry, named, float32", direction: "up", channel: "telemetry", frame: telemetrySensorFloat32 },
  { name: "sensor telemetry, aliased (rv), float32", direction: "up", channel: "telemetry", frame: telemetryAliased },
  {
    name: "sensor telemetry, aliased (rv), float64",
    direction: "up",
    channel: "telemetry",
    frame: telemetryAliasedFloat64,
  },
  { name: "hello declaring the 8 aliases", direction: "up", channel: "hello", frame: helloWithAliases },
  { name: "shadow delta", direction: "down", channel: "state", frame: shadowDelta },
  { name: "reasoning chunk, 200 chars", direction: "down", channel: "reason", frame: reasonChunk },
];

const slices = positiveOption("slices", 40);
const sliceMs = positiveOption("slice-ms", 25);

function codecRoundTrip(codec: Codec, c: Case): { bytes: number; run: Run } {
  const encode = () =>
    c.direction === "up"
      ? codec.encodeUp(c.channel as UpChannel, c.frame as never)
      : codec.encodeDown(c.channel as DownChannel, c.frame as never);
  const decode = (b: Uint8Array) =>
    c.direction === "up" ? codec.decodeUp(c.channel as UpChannel, b) : codec.decodeDown(c.channel as DownChannel, b);
  const sample = encode();
  const check = decode(sample);
  if (!check.ok) throw new Error(`${codec.name} cannot decode its own ${c.name}: ${check.message}`);
  return {
    bytes: sample.length,
    run: () => {
      const result = decode(encode());
      return result.ok ? 1 : 0;
    },
  };
}

const cborX = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false });
function cborXRoundTrip(c: Case): { bytes: number; run: Run } {
  const sample = cborX.encode(c.frame);
  return { bytes: sample.length, run: () => (cborX.decode(cborX.encode(c.frame)) ? 1 : 0) };
}

const contenders: { name: string; make: (c: Case) => { bytes: number; run: Run } }[] = [
  { name: "json", make: (c) => codecRoundTrip(jsonCodec, c) },
  { name: "cbor", make: (c) => codecRoundTrip(cborCodec, c) },
  { name: "pb", make: (c) => codecRoundTrip(pbCodec, c) },
  { name: "cbor-x (reference, unvalidated)", make: cborXRoundTrip },
];

console.log(`machine: ${machineLine()}`);
console.log(`${slices} interleaved slices of ${sliceMs} ms CPU time per contender and frame\n`);
/** Bytes per case name and contender, for the second table. */
const sizes = new Map<string, Map<string, number>>();

console.log("| frame | codec | bytes | bytes vs json | round trips per CPU-second | speed vs json |");
console.log("|---|---|---:|---:|---:|---:|");
for (const c of CASES) {
  const runs = contenders.map((k) => ({ name: k.name, ...k.make(c), n: 0, ms: 0 }));
  interleave(runs, { slices, sliceMs, failure: "a round trip failed" });
  sizes.set(c.name, new Map(runs.map((r) => [r.name, r.bytes])));
  const json = runs[0];
  const jsonRate = (json.n * 1000) / json.ms;
  for (const r of runs) {
    const rate = (r.n * 1000) / r.ms;
    console.log(
      `| ${c.name} | ${r.name} | ${r.bytes} | ${(r.bytes / json.bytes).toFixed(2)} | ${Math.round(rate).toLocaleString("en-US")} | ${(rate / jsonRate).toFixed(2)} |`,
    );
  }
}

/**
 * The compact form against the frame the same device sends without aliases: its natural JSON, readings keyed by
 * name with decimals printed short. Both are byte counts of the bridge's own encoders, taken in this run.
 */
const natural = sizes.get("sensor telemetry, named, decimals")?.get("json");
if (natural === undefined) throw new Error("the natural JSON frame was not measured");
console.log(`\nAliased telemetry vs the device's natural JSON frame (${natural} bytes, 8 readings keyed by name)\n`);
console.log("| frame | codec | bytes | bytes vs natural json |");
console.log("|---|---|---:|---:|");
for (const name of [
  "sensor telemetry, named, float32",
  "sensor telemetry, aliased (rv), float32",
  "sensor telemetry, aliased (rv), float64",
]) {
  for (const codec of ["json", "cbor", "pb"]) {
    const bytes = sizes.get(name)?.get(codec);
    if (bytes === undefined) throw new Error(`${name} was not measured in ${codec}`);
    console.log(`| ${name} | ${codec} | ${bytes} | ${(bytes / natural).toFixed(2)} |`);
  }
}
