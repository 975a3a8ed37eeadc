/** The backup benchmark's option checks and its stall windows (bench/backup/options.ts, bench/backup/stalls.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BACKUP_BENCH_DEFAULTS, readBackupBenchOptions } from "../../bench/backup/options.ts";
import { longestStall, STALL_REPORT_MS } from "../../bench/backup/stalls.ts";

/** A command-line reader over `given` (`--name value` pairs), as bench/cli-args.ts reads the real one. */
function reader(given: Record<string, string>): (name: string, fallback: string) => string {
  return (name, fallback) => given[name] ?? fallback;
}

test("no options give the defaults; given ones are read under their flag names", () => {
  assert.deepEqual(readBackupBenchOptions(reader({})), BACKUP_BENCH_DEFAULTS);
  const options = readBackupBenchOptions(
    reader({ agents: "200", "large-rows": "500", "shadow-keys": "0", rounds: "1", json: "out.json" }),
  );
  assert.equal(options.agents, 200);
  assert.equal(options.largeRows, 500);
  assert.equal(options.shadowKeys, 0);
  assert.equal(options.rounds, 1);
  assert.equal(options.json, "out.json");
});

test("a value that is not a whole number in range is refused with its flag named", () => {
  for (const [name, text] of [
    ["agents", "0"],
    ["agents", "1e3"],
    ["agents", "-5"],
    ["rate", "abc"],
    ["rounds", "21"],
    ["large-rows", "2.5"],
  ]) {
    assert.throws(() => readBackupBenchOptions(reader({ [name]: text })), new RegExp(`^RangeError: --${name} must`));
  }
});

test("devices, woken agents and large agents must be agents of the data dir", () => {
  assert.throws(
    () => readBackupBenchOptions(reader({ agents: "10", devices: "4", active: "7" })),
    /cannot exceed --agents/,
  );
  assert.throws(
    () => readBackupBenchOptions(reader({ agents: "3", large: "4", devices: "1", active: "0" })),
    /--large/,
  );
  assert.equal(readBackupBenchOptions(reader({ agents: "10", devices: "4", active: "6" })).active, 6);
});

test("a window's longest stall is the largest report in it or up to one report period after it", () => {
  const reports = [
    { atMs: 1000, stallMs: 50 },
    { atMs: 1100, stallMs: 3 },
    { atMs: 1200, stallMs: 7 },
    { atMs: 1300 + STALL_REPORT_MS, stallMs: 9 },
    { atMs: 1301 + STALL_REPORT_MS, stallMs: 80 },
  ];
  // The report at the window's start measured the time before it; the one a period after its end, the window's end.
  assert.equal(longestStall(reports, 1000, 1300), 9);
  assert.ok(Number.isNaN(longestStall(reports, 5000, 6000)));
});
