/**
 * The `sim` command: `agent-bridge sim --url mqtt://h:p --devices N --rate R --codec cbor|pb|json
 * --profile sensor|thermostat|constrained|reasoning --duration S [--credentials FILE] [--json]
 * [--verify-api URL [--commands-per-min N] [--desired-per-min N]]`.
 * Exit code 0 when no invariant was violated, 1 when one was, 2 for bad usage.
 */
import { randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { CODEC_NAMES, type CodecName } from "../codecs/frames.ts";
import { onStopSignals } from "../app/cli/stop-signals.ts";
import { BridgeError, namedByFlag } from "../errors/index.ts";
import { checkSimApiToken, findSimApiToken, readApiTokenFile } from "./api-token.ts";
import { loadCredentials } from "./credentials.ts";
import { SimErrorCode } from "./errors.ts";
import type { ApiDriveOptions } from "./fleet/api-driver.ts";
import { createFleet } from "./fleet/fleet.ts";
import { type FleetOptions, withoutUndefined } from "./fleet/options.ts";
import type { FleetReport } from "./fleet/report.ts";
import { SIM_FLAGS } from "./option-flags.ts";
import { PROFILE_NAMES, type ProfileName } from "./profiles/index.ts";
import { formatSimulatorError, formatSummary } from "./report/format.ts";
import { type ProgressStream, startProgress, writeLogLine } from "./report/progress.ts";

/** Where the CLI writes; injectable for tests. */
export interface SimCliIo {
  stdout: { write(text: string): unknown };
  stderr: ProgressStream;
  /** Installs a Ctrl-C handler; returns its remover. Default: process SIGINT/SIGTERM. */
  onInterrupt?: (handler: () => void) => () => void;
  /** Environment read for BRIDGE_API_TOKEN. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The seed of a run not given `--seed` (an integer from 0 to 2^32 - 1). Default a cryptographic random one. */
  newSeed?: () => number;
}

/** A seed for a run not given one: any value of the --seed range. */
function randomSeed(): number {
  return randomInt(0, 2 ** 32);
}

interface RawFlags {
  url: string;
  devices?: number;
  rate: number;
  codec: CodecName;
  profile: ProfileName[];
  duration: number;
  credentials?: string;
  json?: boolean;
  quiet?: boolean;
  secret?: string;
  idPrefix?: string;
  connectRate?: number;
  backoff: "exponential" | "zero";
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  stableConnectionMs?: number;
  buffer?: number;
  inflight?: number;
  persistent?: boolean;
  brokerWithoutDup?: boolean;
  keepalive?: number;
  duplicates?: number;
  dropMeanMs?: number;
  willTopic?: string;
  clockSkewMs?: number;
  /**
   * `--no-clock-ratio`: commander takes a `--no-` flag as the negation of `clockRatio`, so its value lands there, and
   * `true` when the flag is absent.
   */
  clockRatio?: number | true;
  takeover?: number;
  localAddresses?: string;
  verifyApi?: string;
  apiToken?: string;
  apiTokenFile?: string;
  commandsPerMin?: number;
  desiredPerMin?: number;
  seed?: number;
  reasonIntervalMs?: number;
  settleMs?: number;
  drainTimeoutMs?: number;
  ca?: string;
  insecure?: boolean;
}

const number = (name: string) => (value: string) => {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
  return n;
};

const positiveNumber = (name: string) => (value: string) => {
  const n = number(name)(value);
  if (n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
  return n;
};

const profiles = (value: string): ProfileName[] => {
  const list = value
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  for (const p of list) {
    if (!(PROFILE_NAMES as readonly string[]).includes(p)) {
      throw new InvalidArgumentError(`profiles are ${PROFILE_NAMES.join(", ")} (comma-separated for a mix)`);
    }
  }
  return list as ProfileName[];
};

/** Builds the commander definition of `sim` (the app's CLI can mount it as a subcommand). */
export function createSimCommand(): Command {
  return new Command("sim")
    .description("Run a simulated device fleet against an MQTT broker and check the bridge's invariants")
    .requiredOption("--url <url>", "broker URL, mqtt://host:port or mqtts://host:port")
    .option("--devices <n>", "number of devices (default: all credentials, else 10)", number("--devices"))
    .option("--rate <r>", "telemetry messages per second per device", number("--rate"), 1)
    .addOption(new Option("--codec <codec>", "device codec").choices(CODEC_NAMES).default("cbor"))
    .option("--profile <list>", `firmware profile(s), comma-separated: ${PROFILE_NAMES.join(", ")}`, profiles, [
      "sensor",
    ])
    .option("--duration <s>", "seconds of traffic before stopping", positiveNumber("--duration"), 10)
    .option("--credentials <file>", 'JSON array or JSON lines of {"id","secret"} (as `devices add --json` prints)')
    .option("--json", "print one JSON report object last on stdout")
    .option("--quiet", "no progress line")
    .option("--secret <secret>", "password of generated devices (default: none)")
    .option("--id-prefix <prefix>", "prefix of generated device ids (default sim-)")
    .option("--connect-rate <n>", "devices powered on per second (default 500)", number("--connect-rate"))
    .addOption(
      new Option("--backoff <mode>", "reconnect backoff; zero reproduces reconnect storms")
        .choices(["exponential", "zero"])
        .default("exponential"),
    )
    .option("--backoff-base-ms <ms>", "first retry's delay cap (default 1000)", number("--backoff-base-ms"))
    .option("--backoff-max-ms <ms>", "largest retry delay (default 30000)", number("--backoff-max-ms"))
    .option(
      "--stable-connection-ms <ms>",
      "time a connection must stay up before the backoff resets; 0 resets it once online (default 30000)",
      number("--stable-connection-ms"),
    )
    .option("--buffer <n>", "offline buffer size per device, oldest dropped first (default 1000)", number("--buffer"))
    .option("--inflight <n>", "unacknowledged QoS 1 messages per device (default 16)", number("--inflight"))
    .option("--persistent", "persistent sessions (clean session off)")
    .option(
      "--broker-without-dup",
      "the broker resends without DUP (plain aedes): a command's resend is told by its packet id, a repeated final " +
        "reasoning frame is taken for a resend",
    )
    .option("--keepalive <s>", "MQTT keepalive seconds (default 60)", number("--keepalive"))
    .option("--duplicates <ratio>", "share of publishes sent twice with DUP set, 0..1", number("--duplicates"))
    .option("--drop-mean-ms <ms>", "mean time between abrupt network drops per device", number("--drop-mean-ms"))
    .option("--will-topic <topic>", "last-will topic, {id} replaced by the device id")
    .option("--clock-skew-ms <ms>", "largest device clock offset", number("--clock-skew-ms"))
    .option("--no-clock-ratio <ratio>", "share of devices without a clock (no ts)", number("--no-clock-ratio"))
    .option("--takeover <pairs>", "devices that get a twin with the same client id", number("--takeover"))
    .option("--local-addresses <list>", "comma-separated source addresses, e.g. 127.0.0.1,127.0.0.2")
    .option(
      "--verify-api <url>",
      "bridge operator API base URL to read telemetry and command states back, e.g. http://127.0.0.1:8080",
    )
    .option(
      "--api-token <token>",
      "operator API token, visible to other users in ps: prefer --api-token-file or $BRIDGE_API_TOKEN (the default, " +
        "else $AGENT_BRIDGE_API_TOKEN)",
    )
    .addOption(
      new Option(
        "--api-token-file <file>",
        "file holding the operator API token, e.g. the bridge's data/api-token",
      ).conflicts("apiToken"),
    )
    .option(
      "--commands-per-min <n>",
      "with --verify-api: commands sent through the API per online device per minute (default 0)",
      number("--commands-per-min"),
    )
    .option(
      "--desired-per-min <n>",
      "with --verify-api: desired-state changes per online thermostat per minute (default 0)",
      number("--desired-per-min"),
    )
    .option(
      "--seed <n>",
      "seed of the random streams (an integer from 0 to 4294967295), to replay a run",
      number("--seed"),
    )
    .option(
      "--reason-interval-ms <ms>",
      "pause between reasoning questions (default 5000)",
      number("--reason-interval-ms"),
    )
    .option("--settle-ms <ms>", "quiet period before the final checks (default 1000)", number("--settle-ms"))
    .option(
      "--drain-timeout-ms <ms>",
      "longest wait for queued messages at stop (default 10000)",
      number("--drain-timeout-ms"),
    )
    .option("--ca <file>", "CA certificate (PEM) for mqtts://")
    .option("--insecure", "mqtts:// without certificate verification");
}

async function toFleetOptions(flags: RawFlags, env: NodeJS.ProcessEnv): Promise<FleetOptions> {
  const found = findSimApiToken(
    flags.apiTokenFile === undefined ? flags.apiToken : readApiTokenFile(flags.apiTokenFile),
    env,
  );
  // Checked only for a run that sends it: a token in the environment of any other run is none of its business.
  const token = found === undefined || flags.verifyApi === undefined ? found?.token : checkSimApiToken(found);
  const tls =
    flags.ca || flags.insecure
      ? { ca: flags.ca ? readCa(flags.ca) : undefined, rejectUnauthorized: !flags.insecure }
      : undefined;
  return {
    url: flags.url,
    devices: flags.devices,
    rate: flags.rate,
    codec: flags.codec,
    profile: flags.profile,
    credentials: flags.credentials ? await loadCredentials(flags.credentials) : undefined,
    secret: flags.secret,
    idPrefix: flags.idPrefix,
    connectRatePerSec: flags.connectRate,
    backoff: {
      mode: flags.backoff,
      baseDelayMs: flags.backoffBaseMs,
      maxDelayMs: flags.backoffMaxMs,
      stableConnectionMs: flags.stableConnectionMs,
    },
    offlineBufferSize: flags.buffer,
    maxInflight: flags.inflight,
    cleanSession: flags.persistent ? false : undefined,
    brokerSetsDup: flags.brokerWithoutDup ? false : undefined,
    keepaliveSec: flags.keepalive,
    duplicateRatio: flags.duplicates,
    networkDropMeanMs: flags.dropMeanMs,
    lastWillTopic: flags.willTopic,
    clockSkewMs: flags.clockSkewMs,
    noClockRatio: typeof flags.clockRatio === "number" ? flags.clockRatio : undefined,
    takeoverPairs: flags.takeover,
    localAddresses: flags.localAddresses
      ?.split(",")
      .map((a) => a.trim())
      .filter((a) => a !== ""),
    verifyTelemetry: flags.verifyApi ? { apiUrl: flags.verifyApi, token } : undefined,
    verifyCommands: flags.verifyApi ? { apiUrl: flags.verifyApi, token } : undefined,
    driveApi: toDriveApi(flags, token),
    seed: flags.seed,
    reasonIntervalMs: flags.reasonIntervalMs,
    settleMs: flags.settleMs,
    drainTimeoutMs: flags.drainTimeoutMs,
    tls,
  };
}

/** The --ca file; an unreadable one is bad usage (exit 2 naming the flag), not a crash. */
function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new BridgeError(
      SimErrorCode.options,
      `--ca cannot read ${file}: ${reason}`,
      { field: "--ca" },
      { cause: err },
    );
  }
}

/** The API driver's options, or undefined when neither rate was given. The rates need --verify-api (the URL). */
function toDriveApi(flags: RawFlags, token: string | undefined): ApiDriveOptions | undefined {
  if (flags.commandsPerMin === undefined && flags.desiredPerMin === undefined) return undefined;
  if (flags.verifyApi === undefined) {
    const flag = flags.commandsPerMin !== undefined ? "--commands-per-min" : "--desired-per-min";
    throw new BridgeError(SimErrorCode.options, `${flag} needs --verify-api <url> (the bridge's operator API)`, {
      field: flag,
    });
  }
  const drive: ApiDriveOptions = { apiUrl: flags.verifyApi, commandsPerMin: flags.commandsPerMin ?? 0 };
  drive.desiredPerMin = flags.desiredPerMin ?? 0;
  if (token !== undefined) drive.token = token;
  return drive;
}

/**
 * The first SIGINT or SIGTERM stops the run early (it still reports). The same signal again within a second is that
 * one delivered twice and is ignored (app/cli/stop-signals.ts: a terminal sends Ctrl-C to its whole process group, so
 * under `npm run sim`, whose script execs node, the simulator gets it from the terminal and once more from npm). A
 * signal after that ends the process as a signal nothing listens to does.
 */
const defaultInterrupt = (handler: () => void): (() => void) => {
  const remove = onStopSignals({
    stop: handler,
    force: (signal) => {
      remove();
      process.kill(process.pid, signal);
    },
  });
  return remove;
};

/**
 * Runs the fleet simulator CLI with `argv` (the arguments after `sim`) and resolves to the exit code; it never calls
 * process.exit, so the caller decides.
 *
 * @example
 * process.exitCode = await runSimCli(["--url", "mqtt://127.0.0.1:1883", "--devices", "100", "--duration", "30"]);
 */
export async function runSimCli(
  argv: readonly string[],
  io: SimCliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  // Named as a user types it: this runs as `agent-bridge sim` (app/cli/tools.ts passes the arguments through).
  const command = createSimCommand()
    .name("agent-bridge sim")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  let flags: RawFlags;
  try {
    command.parse([...argv], { from: "user" });
    flags = command.opts<RawFlags>();
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  // A run not given a seed gets one, reported with its results: any run, a failing one above all, can be replayed.
  const seed = flags.seed ?? (io.newSeed ?? randomSeed)();
  let fleet: ReturnType<typeof createFleet>;
  try {
    fleet = createFleet(withoutUndefined(await toFleetOptions({ ...flags, seed }, io.env ?? process.env)));
  } catch (caught) {
    const err = namedByFlag(caught, command, SIM_FLAGS);
    if (err instanceof BridgeError) {
      io.stderr.write(`sim: ${err.message} (${err.code})\n`);
      return 2;
    }
    throw err;
  }
  // A bug of the simulator is logged as it happens, once per kind, whatever --quiet says: the run will fail for it.
  fleet.events.on("simulatorError", (e) => writeLogLine(io.stderr, formatSimulatorError(e)));
  const stopProgress = flags.quiet ? () => {} : startProgress(io.stderr, () => fleet.stats());
  let interrupted = false;
  const removeInterrupt = (io.onInterrupt ?? defaultInterrupt)(() => {
    interrupted = true;
    void fleet.stop();
  });
  let report: FleetReport;
  try {
    // An interrupt makes run() stop early and still report, so Ctrl-C gives a summary rather than nothing.
    report = await fleet.run(flags.duration * 1000);
  } finally {
    removeInterrupt();
    stopProgress();
  }
  if (interrupted) io.stderr.write("sim: interrupted, stopped early\n");
  const summary = `${formatSummary(report)}\nseed ${seed} (the same run again: --seed ${seed})\n`;
  if (flags.json) {
    io.stderr.write(summary);
    io.stdout.write(`${JSON.stringify({ ...report, seed })}\n`);
  } else {
    io.stdout.write(summary);
  }
  return report.ok ? 0 : 1;
}
