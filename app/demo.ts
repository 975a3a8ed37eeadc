/**
 * `agent-bridge demo` (`npm run demo`): the whole path in one command. Starts the engine simulator, a bridge that
 * uses it (temporary data directory, free ports), provisions a small fleet with real credentials, starts the fleet
 * simulator (sensor, thermostat, constrained and reasoning devices) and prints each reasoning question and answer
 * as it arrives. Ctrl-C (or `--duration-s`) stops everything and prints the fleet report.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import type { DownMessage } from "../codecs/frames.ts";
import { type EngineSimulator, startEngineSimulator } from "../engine-client/sim/index.ts";
import { createFleet, type DeviceCredential, type ProfileName } from "../firmware-sim/index.ts";
import { formatSummary } from "../firmware-sim/report/format.ts";
import type { BridgeTap } from "./bridge/tap.ts";
import { DEMO_DEFAULTS } from "./demo-defaults.ts";
import { type Bridge, createBridge } from "./bridge.ts";
import { dashboardLink } from "./dashboard/index.ts";
import { demoOnlineLines } from "./demo-online.ts";
import { exitOnBridgeBuildError, loadConfigWithSourcesOrExit } from "./cli/config-flags.ts";
import { onStopSignals } from "./cli/stop-signals.ts";
import { createLogger } from "./logging.ts";
import { listenerUrl } from "./listener-url.ts";

/** The demo fleet: one device per profile, so every behaviour shows. */
export const DEMO_DEVICES: ReadonlyArray<{ id: string; profile: ProfileName }> = [
  { id: "demo-sensor-1", profile: "sensor" },
  { id: "demo-thermostat-1", profile: "thermostat" },
  { id: "demo-constrained-1", profile: "constrained" },
  { id: "demo-assistant-1", profile: "reasoning" },
];

export interface DemoOptions {
  /** `start`-style flags (config, ports, log level...). */
  flags: Readonly<Record<string, unknown>>;
  /** Stop by itself after this many seconds; 0 runs until a signal. */
  durationSeconds: number;
  /** Pause between a reasoning device's answer and its next question, ms. */
  reasonIntervalMs: number;
  /** Where the human-readable lines go. */
  print: (line: string) => void;
}

/** Collects streamed `down/reason` chunks per request and prints the answer when its final frame arrives. */
function answerPrinter(print: (line: string) => void): BridgeTap {
  const partial = new Map<string, string>();
  return {
    up(agentId, message) {
      if (message.channel === "reason") print(`? ${agentId} asks: ${message.frame.q}`);
    },
    down(agentId, message: DownMessage) {
      if (message.channel === "error") {
        print(`x ${agentId} got error ${message.frame.code}: ${message.frame.msg}`);
        return;
      }
      if (message.channel !== "reason") return;
      const key = `${agentId}/${message.frame.id}`;
      const text = (partial.get(key) ?? "") + (message.frame.text ?? "");
      if (!message.frame.fin) {
        partial.set(key, text);
        return;
      }
      partial.delete(key);
      const usage = message.frame.u ? `, ${message.frame.u.p} prompt + ${message.frame.u.c} completion tokens` : "";
      print(`! ${agentId} answer (${message.frame.fr ?? "stop"}${usage}): ${text.trim()}`);
    },
  };
}

/** Runs the demo until a signal or the duration; resolves with the exit code. */
export async function runDemo(options: DemoOptions): Promise<number> {
  const explicitDataDir = typeof options.flags.dataDir === "string" || Boolean(process.env.BRIDGE_DATA_DIR);
  const tempDir = explicitDataDir ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), "agent-bridge-demo-"));
  try {
    return await runDemoIn(options, tempDir);
  } finally {
    // Also when the demo never got going (a config error, a bridge that could not be built).
    if (tempDir !== undefined) fs.rmSync(tempDir, { recursive: true, force: true });
  }
}

async function runDemoIn(options: DemoOptions, tempDir: string | undefined): Promise<number> {
  const { print } = options;
  const { config, sources } = loadConfigWithSourcesOrExit(options.flags, process.env, {
    ...(tempDir === undefined ? {} : { dataDir: tempDir }),
    mqtt: { host: DEMO_DEFAULTS.host, port: DEMO_DEFAULTS.mqttPort },
    http: { port: DEMO_DEFAULTS.httpPort },
    log: { level: DEMO_DEFAULTS.logLevel },
  });
  // Logs go to stderr so the demo's own lines on stdout stay readable.
  const logger = createLogger({ level: config.log.level, destination: pino.destination({ dest: 2, sync: true }) });

  // An engine the configuration names (`--engine-url`, BRIDGE_ENGINE_URL, the file) is the one asked, a real vLLM
  // on a GPU box say; without one, the demo brings its own simulator.
  let sim: EngineSimulator | undefined;
  let engineUrls = config.engine.urls;
  if (engineUrls.length > 0) print(`engine: ${engineUrls.join(", ")} (from the configuration)`);
  else {
    print("starting the engine simulator ...");
    sim = await startEngineSimulator({ host: "127.0.0.1", port: 0 });
    print(`engine simulator: ${sim.url} (model ${sim.model})`);
    engineUrls = [sim.url];
  }
  let bridge: Bridge;
  try {
    bridge = await createBridge(
      { ...config, engine: { ...config.engine, urls: engineUrls } },
      { logger, tap: answerPrinter(print) },
    );
  } catch (err) {
    await sim?.close();
    // Ended as `start` ends them (cli/start.ts, docs/errors.md): problems the operator resolves get one plain line
    // and their exit code, not a fault's report.
    exitOnBridgeBuildError(err, sources);
    throw err;
  }
  let fleet: ReturnType<typeof createFleet> | undefined;
  let removeSignalListeners: (() => void) | undefined;
  try {
    const credentials: DeviceCredential[] = [];
    for (const device of DEMO_DEVICES) {
      const added = await bridge.registry.add(device.id, { codec: "cbor" });
      if (added.status === "created") credentials.push({ id: device.id, secret: added.secret });
      else {
        // A kept data directory: issue a fresh secret so the simulated device can log in again.
        const secret = await bridge.registry.rotateSecret(device.id);
        if (secret !== undefined) credentials.push({ id: device.id, secret });
      }
    }
    const addresses = await bridge.start();
    // Where the listeners were bound (--host, --http-host, 127.0.0.1 by default), as this machine reaches them.
    const mqttUrl = listenerUrl("mqtt", addresses.mqtt ?? { host: config.mqtt.host, port: 0 });
    const httpUrl = listenerUrl("http", addresses.http ?? { host: config.http.host, port: 0 });
    print(`bridge ready: MQTT ${mqttUrl.slice("mqtt://".length)}, HTTP ${httpUrl}`);
    print(`operator API token: ${bridge.apiToken}`);
    print(`dashboard: ${dashboardLink(httpUrl, bridge.apiToken)}`);
    fleet = createFleet({
      url: mqttUrl,
      credentials,
      profile: DEMO_DEVICES.map((d) => d.profile),
      codec: "cbor",
      rate: 1,
      reasonIntervalMs: options.reasonIntervalMs,
      // At the end the fleet reads its telemetry back through the operator API: acknowledged means stored.
      verifyTelemetry: { apiUrl: httpUrl, token: bridge.apiToken },
    });
    const onlineLines = demoOnlineLines(DEMO_DEVICES.length);
    fleet.events.on("online", (id) => print(onlineLines.online(id)));
    fleet.events.on("offline", (id) => onlineLines.offline(id));
    fleet.events.on("violation", (v) => print(`invariant violated: ${JSON.stringify(v)}`));
    await fleet.start();
    print(options.durationSeconds > 0 ? `running for ${options.durationSeconds} s ...` : "running; Ctrl-C stops");
    await new Promise<void>((resolve) => {
      const timer = options.durationSeconds > 0 ? setTimeout(resolve, options.durationSeconds * 1000) : undefined;
      // Listening until the demo is over: a Ctrl-C under `npm run demo` arrives twice (cli/stop-signals.ts), and a
      // signal nothing listens to any more ends the process before the fleet's report and the bridge's stop.
      removeSignalListeners = onStopSignals({
        stop: () => {
          if (timer) clearTimeout(timer);
          resolve();
        },
        force: () => process.exit(1),
      });
    });
    print("stopping the fleet ...");
    const report = await fleet.stop();
    fleet = undefined;
    print(formatSummary(report));
    return report.ok ? 0 : 1;
  } finally {
    if (fleet) await fleet.stop().catch(() => undefined);
    await bridge.stop();
    await sim?.close();
    removeSignalListeners?.();
    print("demo stopped");
  }
}
