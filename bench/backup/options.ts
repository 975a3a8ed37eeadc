/**
 * The backup benchmark's options (`npm run bench:backup -- --agents 200 ...`), read with the suites' one command-line
 * reader (bench/cli-args.ts) and checked here, so a typo stops the run at once with the option named instead of
 * measuring something else for minutes.
 */
import { option } from "../cli-args.ts";

export interface BackupBenchOptions {
  /** DeviceAgents in the data dir (each with telemetry rows and a shadow). */
  agents: number;
  /** Telemetry rows of an ordinary agent. */
  rows: number;
  /** Agents among them that are large, with `largeRows` rows each. */
  large: number;
  largeRows: number;
  /** Keys of each agent's reported shadow (a short string each). */
  shadowKeys: number;
  /** Agents woken through the API before the measurement (besides the devices' own), so the backup meets both kinds. */
  active: number;
  /** Live MQTT devices sending QoS 1 telemetry during the measurement (they are the first agents). */
  devices: number;
  /** Messages per second of each live device. */
  rate: number;
  /** Rounds: each one backup window and one quiet window of the same length. */
  rounds: number;
  /** Where to write the results as JSON; none when empty. */
  json: string;
}

export const BACKUP_BENCH_DEFAULTS: BackupBenchOptions = {
  agents: 1000,
  rows: 200,
  large: 5,
  largeRows: 20_000,
  shadowKeys: 20,
  active: 100,
  devices: 4,
  rate: 50,
  rounds: 5,
  json: "",
};

/** Ceilings that keep one run bounded in disk and time, whatever is asked. */
const MAX: Record<Exclude<keyof BackupBenchOptions, "json">, number> = {
  agents: 20_000,
  rows: 100_000,
  large: 1000,
  largeRows: 100_000,
  shadowKeys: 256,
  active: 20_000,
  devices: 64,
  rate: 1000,
  rounds: 20,
};

/** The options from `read` (the command line by default); throws naming the first one that is not acceptable. */
export function readBackupBenchOptions(read: (name: string, fallback: string) => string = option): BackupBenchOptions {
  const int = (name: keyof typeof MAX, flagName: string, min: number): number => {
    const text = read(flagName, String(BACKUP_BENCH_DEFAULTS[name]));
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > MAX[name]) {
      throw new RangeError(`--${flagName} must be an integer from ${min} to ${MAX[name]}, got ${JSON.stringify(text)}`);
    }
    return value;
  };
  const options: BackupBenchOptions = {
    agents: int("agents", "agents", 1),
    rows: int("rows", "rows", 0),
    large: int("large", "large", 0),
    largeRows: int("largeRows", "large-rows", 0),
    shadowKeys: int("shadowKeys", "shadow-keys", 0),
    active: int("active", "active", 0),
    devices: int("devices", "devices", 1),
    rate: int("rate", "rate", 1),
    rounds: int("rounds", "rounds", 1),
    json: read("json", ""),
  };
  // Live devices, woken agents and large agents are agents of the data dir: more of them would measure a bigger fleet.
  if (options.devices + options.active > options.agents) {
    const asked = `--devices (${options.devices}) and --active (${options.active})`;
    throw new RangeError(`${asked} together cannot exceed --agents (${options.agents})`);
  }
  if (options.large > options.agents) {
    throw new RangeError(`--large (${options.large}) cannot exceed --agents (${options.agents})`);
  }
  return options;
}
