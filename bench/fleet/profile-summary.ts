/**
 * Summarizes a V8 .cpuprofile (as `node --cpu-prof` writes it): self time by function and by source file, so a missed
 * target can be explained by where the bridge spends its CPU. Usage: node --import tsx bench/fleet/profile-summary.ts FILE [TOP]
 */
import fs from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function and per file, ms, largest first, of the samples between `fromMs` and `toMs` after the profile's start. */
export function summarizeProfile(
  profile: Profile,
  top = 25,
  fromMs = 0,
  toMs = Number.POSITIVE_INFINITY,
): { byFunction: [string, number][]; byFile: [string, number][]; totalMs: number; busyPerSecondMs: number[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let totalMs = 0;
  let atMs = 0;
  const busyPerSecondMs: number[] = [];
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    atMs += ms;
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const second = Math.floor(atMs / 1000);
    if (functionName !== "(idle)") busyPerSecondMs[second] = (busyPerSecondMs[second] ?? 0) + ms;
    if (atMs < fromMs || atMs > toMs) return;
    totalMs += ms;
    const shortUrl = url.replace(/^file:\/\/.*?\/(node_modules|app|agents|broker|codecs|engine-client)\//, "$1/").replace(/^node:/, "node:");
    const fnKey = `${functionName || "(anonymous)"} ${shortUrl}:${lineNumber + 1}`;
    fn.set(fnKey, (fn.get(fnKey) ?? 0) + ms);
    const fileKey = shortUrl === "" ? functionName : (shortUrl.match(/^node_modules\/(@[^/]+\/[^/]+|[^/]+)/)?.[0] ?? shortUrl);
    file.set(fileKey, (file.get(fileKey) ?? 0) + ms);
  });
  const sort = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { byFunction: sort(fn), byFile: sort(file), totalMs, busyPerSecondMs: Array.from(busyPerSecondMs, (v) => v ?? 0) };
}

if (process.argv[1] && import.meta.filename === fs.realpathSync(process.argv[1])) {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: profile-summary.ts FILE.cpuprofile [TOP] [FROM_MS] [TO_MS]");
    process.exit(2);
  }
  const { byFunction, byFile, totalMs, busyPerSecondMs } = summarizeProfile(
    JSON.parse(fs.readFileSync(file, "utf8")) as Profile,
    Number(process.argv[3] ?? 25),
    Number(process.argv[4] ?? 0),
    Number(process.argv[5] ?? Number.POSITIVE_INFINITY),
  );
  const pct = (ms: number) => `${((100 * ms) / totalMs).toFixed(1)}%`;
  console.log(`busy ms per second of the profile: ${busyPerSecondMs.map((v) => Math.round(v)).join(" ")}`);
  console.log(`window: ${totalMs.toFixed(0)} ms sampled\n\nself time by file or package:`);
  for (const [k, ms] of byFile) console.log(`  ${pct(ms).padStart(6)}  ${ms.toFixed(0).padStart(7)} ms  ${k}`);
  console.log("\nself time by function:");
  for (const [k, ms] of byFunction) console.log(`  ${pct(ms).padStart(6)}  ${ms.toFixed(0).padStart(7)} ms  ${k}`);
}
