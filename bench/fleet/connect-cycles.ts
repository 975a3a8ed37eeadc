/**
 * One side of the connect-path benchmark's wake/hibernate part, in a process of its own
 * (`node --import tsx bench/fleet/connect-cycles.ts ROOT JSON`): the agent runtime and DeviceAgent of the build checked
 * out at ROOT (this one, or the baseline's), on a data dir of DeviceAgent databases that already exist. A cycle is
 * what a known device's reconnect costs the runtime: its connection opens (wake: open the database, load the state,
 * onStart with the schema check, onConnect, commit), closes (onClose, commit), and its agent hibernates (the database
 * closes) when the next device's agent comes in, as the least recently used one beyond `maxActiveAgents` = 1.
 * Then `opens` times the open alone: `openAgentDatabase` of the same build on those files and the first read (the
 * state), then a close that has nothing to write back.
 * Prints one JSON line: wall time, event-loop busy time (what the main thread spent, waits for the disk included) and
 * CPU time of the timed cycles, the wake part (`onWake`) of them, and the opens' time.
 */
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import type * as AgentsModule from "../../agents/index.ts";
import type * as StorageModule from "../../agents/storage.ts";

interface Params {
  dataDir: string;
  /** Agents (databases) the cycles go round; at least 2, so each cycle hibernates the previous agent. */
  agents: number;
  cycles: number;
  opens: number;
}

const root = process.argv[2] ?? "";
const params = JSON.parse(process.argv[3] ?? "{}") as Params;
const { createRuntime, DeviceAgent } = (await import(
  pathToFileURL(path.join(root, "agents/index.ts")).href
)) as typeof AgentsModule;
const { openAgentDatabase } = (await import(
  pathToFileURL(path.join(root, "agents/storage.ts")).href
)) as typeof StorageModule;
const pino = (await import("pino")).default;

const nullTransport: AgentsModule.ConnectionTransport = { send() {}, sendProtocol() {}, close() {} };
const ids = Array.from({ length: params.agents }, (_, i) => `dev-${i}`);

function runtime(wakes: number[]): AgentsModule.AgentRuntime {
  return createRuntime({
    dataDir: params.dataDir,
    defaultAgentClass: DeviceAgent,
    logger: pino({ level: "silent" }),
    maxActiveAgents: 1,
    observer: { onWake: (w) => wakes.push(w.durationMs) },
  });
}

let session = 0;
/** One reconnect of device `id`: its connection opens and closes, as an MQTT session's do. */
async function reconnect(rt: AgentsModule.AgentRuntime, id: string): Promise<void> {
  const conn = `s${session++}`;
  const opened = await rt.open(id, { id: conn, kind: "mqtt", codec: "cbor", transport: nullTransport });
  if (opened.status !== "committed") throw new Error(`open ${id}: ${opened.message}`);
  const closed = await rt.close(id, conn, "disconnect");
  if (closed.status !== "committed") throw new Error(`close ${id}: ${closed.message}`);
}

// Untimed: the databases exist (created by this build, or by the other side's: both read the same files' format).
const created = !fs.existsSync(path.join(params.dataDir, "agents"));
{
  const rt = runtime([]);
  if (created) for (const id of ids) await reconnect(rt, id);
  await rt.shutdown();
}

const wakes: number[] = [];
const rt = runtime(wakes);
// One warm-up lap, so both sides meet files in the page cache and a warm JIT.
for (const id of ids) await reconnect(rt, id);
wakes.length = 0;
const cpu0 = process.cpuUsage();
const elu0 = performance.eventLoopUtilization();
const t0 = performance.now();
for (let i = 0; i < params.cycles; i++) await reconnect(rt, ids[i % ids.length]!);
// The last agent's hibernation, so every timed cycle closed its database.
await rt.shutdown();
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const busyMs = performance.eventLoopUtilization(elu0).active;

const storage: StorageModule.StorageSettings = {
  maxDatabaseBytes: 1024 ** 3,
  synchronous: "NORMAL",
  lockingMode: "EXCLUSIVE",
  cacheSizeKiB: 256,
  pageSizeBytes: 1024,
};
let openMs = 0;
for (let i = 0; i < params.opens; i++) {
  const o0 = performance.now();
  const db = openAgentDatabase(path.join(params.dataDir, "agents", `${ids[i % ids.length]}.db`), storage);
  db.prepare("SELECT data FROM _bridge_state ORDER BY chunk").all();
  openMs += performance.now() - o0;
  db.close();
}
console.log(
  JSON.stringify({
    cycles: params.cycles,
    wallMs,
    busyMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    wakeMs: wakes.reduce((a, b) => a + b, 0),
    opens: params.opens,
    openMs,
  }),
);
