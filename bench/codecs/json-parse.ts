/**
 * JSON decode cost of the strict parser (`npm run bench:codecs:json`, or `node --import tsx bench/codecs/json-parse.ts`):
 * the JSON codec's `decodeUp`/`decodeDown` (strict parser: exact integers beyond 2^53, duplicate keys refused) against
 * the same decode built on `JSON.parse` (what the codec did before: `JSON.parse`, then the same Value walk and schema
 * check), on the frames of the codec benchmark, in interleaved slices of process CPU time.
 *
 * Options: --slices N (default 40), --slice-ms N (default 25).
 */
import { machineLine } from "../machine.ts";
import { type DownChannel, DOWN_SCHEMAS, jsonCodec, type UpChannel, UP_SCHEMAS } from "../../codecs/index.ts";
import { fromJsonMap } from "../../codecs/json/json-value.ts";
import { checkFrame } from "../../codecs/schema/check.ts";
import {
  helloWithAliases,
  reasonChunk,
  shadowDelta,
  telemetry,
  telemetryAliased,
  telemetrySensorJson,
} from "./frames.ts";
import { interleave, positiveOption } from "./cpu-slices.ts";

const CASES: { name: string; direction: "up" | "down"; channel: string; frame: object }[] = [
  { name: "telemetry, 8 readings", direction: "up", channel: "telemetry", frame: telemetry },
  { name: "sensor telemetry, named, decimals", direction: "up", channel: "telemetry", frame: telemetrySensorJson },
  { name: "sensor telemetry, aliased (rv), float32", direction: "up", channel: "telemetry", frame: telemetryAliased },
  { name: "hello declaring the 8 aliases", direction: "up", channel: "hello", frame: helloWithAliases },
  { name: "shadow delta", direction: "down", channel: "state", frame: shadowDelta },
  { name: "reasoning chunk, 200 chars", direction: "down", channel: "reason", frame: reasonChunk },
];

const slices = positiveOption("slices", 40);
const sliceMs = positiveOption("slice-ms", 25);
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

console.log(`machine: ${machineLine()}`);
console.log(`${slices} interleaved slices of ${sliceMs} ms CPU time per contender and frame\n`);
console.log(
  "| frame | bytes | JSON.parse-based decodes per CPU-second (baseline) | strict decodes per CPU-second | strict vs baseline |",
);
console.log("|---|---:|---:|---:|---:|");
for (const c of CASES) {
  const bytes =
    c.direction === "up"
      ? jsonCodec.encodeUp(c.channel as UpChannel, c.frame as never)
      : jsonCodec.encodeDown(c.channel as DownChannel, c.frame as never);
  const schema = c.direction === "up" ? UP_SCHEMAS[c.channel as UpChannel] : DOWN_SCHEMAS[c.channel as DownChannel];
  const baseline = () => {
    const parsed = JSON.parse(utf8.decode(bytes)) as Record<string, unknown>;
    return checkFrame(schema, fromJsonMap(parsed, 1, 16, "", false)) ? 1 : 0;
  };
  const strict = () => {
    const result =
      c.direction === "up"
        ? jsonCodec.decodeUp(c.channel as UpChannel, bytes)
        : jsonCodec.decodeDown(c.channel as DownChannel, bytes);
    return result.ok ? 1 : 0;
  };
  const runs = [
    { run: baseline, n: 0, ms: 0 },
    { run: strict, n: 0, ms: 0 },
  ];
  interleave(runs, { slices, sliceMs, failure: "a decode failed" });
  const [base, ours] = runs.map((r) => (r.n * 1000) / r.ms);
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  console.log(`| ${c.name} | ${bytes.length} | ${fmt(base)} | ${fmt(ours)} | ${(ours / base).toFixed(2)} |`);
}
