/**
 * Every benchmark of the project, one after another (`npm run bench`; `npm run bench -- --quick` for the short
 * forms, `--only engine-bridge,fleet` for some). Each suite runs in its own process with the options shown, prints
 * its tables with the machine it ran on, and compares against a baseline measured in the same run (see each suite's
 * header comment and docs/benchmarks.md). Exits non-zero when a suite failed; the others still run.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { parseArgs } from "node:util";

interface Suite {
  name: string;
  script: string;
  nodeFlags?: string[];
  args: string[];
  quickArgs: string[];
}

const SUITES: Suite[] = [
  { name: "codecs", script: "codecs/index.ts", args: [], quickArgs: ["--slices", "20"] },
  { name: "agents", script: "agents/index.ts", nodeFlags: ["--expose-gc"], args: [], quickArgs: ["--quick"] },
  { name: "engine", script: "engine/index.ts", args: [], quickArgs: ["--rounds", "1"] },
  {
    name: "engine-overhead",
    script: "engine/overhead.ts",
    args: [],
    quickArgs: ["--requests", "500", "--rounds", "3"],
  },
  { name: "engine-hop", script: "engine/loopback-hop.ts", args: [], quickArgs: ["--count", "30"] },
  {
    name: "engine-bridge",
    script: "engine/bridge.ts",
    args: ["--floor"],
    quickArgs: ["--floor", "--rounds", "1", "--pairs", "24", "--turns", "8"],
  },
  { name: "fleet", script: "fleet/index.ts", args: [], quickArgs: ["--quick"] },
  {
    name: "connect",
    script: "fleet/connect-path.ts",
    args: [],
    quickArgs: ["--rounds", "1", "--cycles", "500", "--devices", "400", "--max-active", "100"],
  },
  { name: "backup", script: "backup.ts", args: [], quickArgs: ["--agents", "200", "--large", "2", "--rounds", "2"] },
];

const { values } = parseArgs({
  options: { quick: { type: "boolean", default: false }, only: { type: "string" } },
  strict: true,
});
const only = values.only?.split(",").map((name) => name.trim());
const unknown = only?.filter((name) => !SUITES.some((suite) => suite.name === name)) ?? [];
if (unknown.length > 0) {
  console.error(`unknown suite ${unknown.join(", ")}; the suites are ${SUITES.map((s) => s.name).join(", ")}`);
  process.exit(2);
}

const failed: string[] = [];
for (const suite of SUITES) {
  if (only !== undefined && !only.includes(suite.name)) continue;
  const args = values.quick ? suite.quickArgs : suite.args;
  console.log(`\n## ${suite.name}: ${[suite.script, ...args].join(" ")}\n`);
  const result = spawnSync(
    process.execPath,
    [...(suite.nodeFlags ?? []), "--import", "tsx", path.join(import.meta.dirname, suite.script), ...args],
    { stdio: "inherit" },
  );
  if (result.status !== 0) failed.push(suite.name);
}
if (failed.length > 0) {
  console.error(`\nfailed: ${failed.join(", ")}`);
  process.exit(1);
}
