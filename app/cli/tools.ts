/**
 * `agent-bridge engine-sim ...`, `agent-bridge sim ...` and `agent-bridge demo`. The first two hand their arguments
 * to the simulators' own command lines (engine-client/sim, firmware-sim), so their flags are documented there once.
 */
import { type Command, CommanderError } from "commander";
import { hasErrorCode } from "../../errors/index.ts";
import { DEMO_DEFAULTS } from "../demo-defaults.ts";
import { addBridgeFlags } from "./start.ts";
import { CliExit, EXIT_USAGE } from "./exit.ts";

/** Commands whose arguments are passed through untouched (parsed by the simulator itself). */
export const PASS_THROUGH_COMMANDS = ["engine-sim", "sim"] as const;

/** Runs the engine simulator until SIGINT/SIGTERM. */
export async function runEngineSim(args: readonly string[]): Promise<number> {
  const { runEngineSimCli } = await import("../../engine-client/sim/index.ts");
  let sim: Awaited<ReturnType<typeof runEngineSimCli>>;
  try {
    sim = await runEngineSimCli([...args], { log: (line) => process.stdout.write(`${line}\n`), handleSignals: false });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    // A flag value the simulator's options refuse (`--port 99999`) is bad usage like one commander refuses, not a
    // run-time failure: exit 2 (docs/cli.md), with the simulator's line naming the option.
    if (hasErrorCode(err, "BRIDGE_ERR_CONFIG")) {
      process.stderr.write(`error: ${(err as Error).message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await sim.close();
  return 0;
}

/** Runs the fleet simulator CLI; resolves with its exit code. */
export async function runFleetSim(args: readonly string[]): Promise<number> {
  const { runSimCli } = await import("../../firmware-sim/cli.ts");
  return runSimCli(args);
}

/**
 * Longest `--duration-s`: the demo waits with one timer, and Node fires a timer of more than 2^31-1 ms after 1 ms
 * (TimeoutOverflowWarning), so a longer duration stopped the demo as soon as it ran.
 */
const MAX_DEMO_DURATION_S = Math.floor(2_147_483_647 / 1000);

/**
 * Longest `--reason-interval-ms`: the fleet simulator's own bound (firmware-sim fleet options). Checked here, since the
 * fleet checks it only once the engine simulator and the bridge run, and then names its option, not this flag.
 */
const MAX_REASON_INTERVAL_MS = 3_600_000;

/** Reads a flag's number; bad usage prints its message here, since commander prints only the errors it raised. */
function numberInRange(value: string, name: string, max: number): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0 || n > max) {
    process.stderr.write(`error: ${name} must be a number from 0 to ${max} (got ${JSON.stringify(value)})\n`);
    throw new CliExit(EXIT_USAGE, "invalid argument");
  }
  return n;
}

/** Adds `engine-sim`, `sim` (for help; arguments are passed through by `runCli`) and `demo`. */
export function registerToolCommands(program: Command): void {
  program
    .command("engine-sim")
    .description("run the OpenAI-compatible engine simulator (agent-bridge engine-sim --help for its flags)")
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments();
  program
    .command("sim")
    .description("run a simulated device fleet against a broker (agent-bridge sim --help for its flags)")
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments();
  addBridgeFlags(
    program
      .command("demo")
      .description("bridge + engine simulator + a small simulated fleet; prints reasoning answers as they arrive"),
    // What runDemo sets (app/demo.ts): its help must not promise start's ./data, 0.0.0.0:1883 and :8080.
    {
      dataDir: "default: a temporary one, removed at the end",
      host: DEMO_DEFAULTS.host,
      mqttPort: String(DEMO_DEFAULTS.mqttPort),
      httpPort: String(DEMO_DEFAULTS.httpPort),
      logLevel: DEMO_DEFAULTS.logLevel,
    },
  )
    .option("--duration-s <seconds>", "stop after this many seconds (default: run until Ctrl-C)")
    .option("--reason-interval-ms <ms>", "pause between a device's answer and its next question", "4000")
    .action(async (flags: Record<string, unknown>) => {
      const { runDemo } = await import("../demo.ts");
      const { durationS, reasonIntervalMs, ...bridgeFlags } = flags;
      process.exitCode = await runDemo({
        flags: bridgeFlags,
        durationSeconds:
          durationS === undefined ? 0 : numberInRange(String(durationS), "--duration-s", MAX_DEMO_DURATION_S),
        reasonIntervalMs: numberInRange(String(reasonIntervalMs), "--reason-interval-ms", MAX_REASON_INTERVAL_MS),
        print: (line) => process.stdout.write(`${line}\n`),
      });
    });
}
