import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, test } from "node:test";
import { createRuntime } from "../../agents/index.ts";
import { CrashWriter } from "./fixtures/crash-writer.ts";
import { seededRandom, silentLogger, tempDir } from "./helpers.ts";

const child = path.join(import.meta.dirname, "fixtures", "crash-writer.ts");

/**
 * Runs the writer until it printed "ready", waits `killAfterMs`, kills it with SIGKILL, returns what it reported.
 * `maxActiveAgents` (default: the runtime's) below the writer's 4 agents makes them hibernate and wake all the time.
 */
function runAndKill(dataDir: string, round: number, killAfterMs: number, maxActiveAgents?: number): Promise<string[]> {
  const args = [child, dataDir, String(round), ...(maxActiveAgents === undefined ? [] : [String(maxActiveAgents)])];
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    let timer: NodeJS.Timeout | null = null;
    proc.stdout.setEncoding("utf8");
    proc.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (timer === null && out.includes("ready\n")) timer = setTimeout(() => proc.kill("SIGKILL"), killAfterMs);
    });
    proc.on("error", reject);
    proc.on("exit", (_code, signal) => {
      if (timer !== null) clearTimeout(timer);
      if (signal !== "SIGKILL") reject(new Error(`writer exited without being killed (${signal})`));
      // A line cut by the kill is incomplete: only whole lines count as reported.
      else resolve(out.split("\n").filter((l) => /^C \S+ \S+$/.test(l)));
    });
  });
}

const t = tempDir("agents-crash-");
after(() => t.remove());

/** Kills the writer in `rounds` rounds, then checks every agent's rows against what it reported committed. */
async function crashRounds(dataDir: string, seed: number, maxActiveAgents?: number): Promise<void> {
  const random = seededRandom(seed);
  const reported = new Map<string, Set<string>>();
  const rounds = 4;
  for (let round = 0; round < rounds; round++) {
    const lines = await runAndKill(dataDir, round, 100 + Math.floor(random() * 400), maxActiveAgents);
    for (const l of lines) {
      const [, agent, id] = l.split(" ");
      if (!reported.has(agent)) reported.set(agent, new Set());
      reported.get(agent)!.add(id);
    }
  }
  let total = 0;
  const rt = createRuntime({ dataDir, defaultAgentClass: CrashWriter, logger: silentLogger });
  try {
    for (const agent of ["w0", "w1", "w2", "w3"]) {
      const r = await rt.call(agent, "check", []);
      assert.ok(r.ok);
      const { a, b, n } = r.value as { a: string[]; b: string[]; n: number };
      assert.deepEqual(a, b, `${agent}: both tables hold the same events (no partial event)`);
      assert.equal(n, a.length, `${agent}: the state counts exactly the stored events`);
      const stored = new Set(a);
      for (const id of reported.get(agent) ?? []) assert.ok(stored.has(id), `${agent}: reported ${id} is missing`);
      total += reported.get(agent)?.size ?? 0;
    }
  } finally {
    await rt.shutdown();
  }
  assert.ok(total > 0, "the writer reported commits before it was killed");
  console.log(`crash test: ${total} reported events checked`);
}

test("after SIGKILL at random moments every event reported committed is stored and no event is stored in part", async () => {
  await crashRounds(path.join(t.dir, "data"), 20260101);
});

test("the same holds while agents hibernate and wake all the time, their closes waiting for fsyncs", async () => {
  await crashRounds(path.join(t.dir, "data-hibernating"), 20260102, 2);
});
