/**
 * `agent-bridge devices add|list|rm`: provisioning against the registry file in the data directory. Works while
 * the bridge runs (the registry is shared through SQLite WAL), so no restart is needed to add a device. `rm --purge`
 * also removes the agent's data, and only while no bridge runs (devices-purge.ts).
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { CODEC_NAMES, type CodecName } from "../../codecs/frames.ts";
import type { DeviceRecord, DeviceRegistry } from "../../broker/registry/index.ts";
import { DEVICE_ID_RULE, isValidDeviceId } from "../../codecs/index.ts";
import { makeDataDir } from "../bridge/data-dir.ts";
import { agentDatabaseFile, REGISTRY_FILE } from "../bridge/layout.ts";
import type { BridgeConfig } from "../config/index.ts";
import { exitOnConfigError, loadConfigOrExit, loadConfigWithSourcesOrExit } from "./config-flags.ts";
import type { AgentClassFallback } from "../bridge/agent-class-fallback.ts";
import { requireServedAgentClass, servedAgentClasses } from "./devices-agent-class.ts";
import { addBatch, batchIds } from "./devices-batch.ts";
import { purgeDevice } from "./devices-purge.ts";
import { CliExit, EXIT_FAILURE, EXIT_USAGE } from "./exit.ts";

type Flags = Record<string, unknown>;

/** C0 and C1 control characters and DEL: a terminal acts on them, and a tab or newline would shape the table. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * A device's own text (its hello's firmware) as a table cell: control characters written as `\u001b`, so a device can
 * neither drive the operator's terminal (escape sequences) nor add rows or cells to the list. Applied to `--json` text
 * too: JSON escapes C0 itself but writes DEL and C1 (the one-byte CSI, `\u009b`) as they are, and `\u009b` is JSON.
 */
function escapeControls(text: string): string {
  return text.replace(CONTROL_CHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * Opens the registry in the data directory. Only provisioning (`add`) makes the directory; reading or removing
 * (`list`, `rm`) in a directory that is not there would leave an empty one with a registry behind a mistyped
 * `--data-dir`, so they say so instead (exit 1) and create nothing.
 */
async function openRegistry(
  flags: Flags,
  use: "provision" | "existing",
  config: BridgeConfig = loadConfigOrExit(flags),
): Promise<DeviceRegistry> {
  if (use === "provision") {
    try {
      makeDataDir(config.dataDir);
    } catch (err) {
      // A path that cannot be a directory: one `config error:` line naming dataDir, as `start` prints it.
      exitOnConfigError(err, loadConfigWithSourcesOrExit(flags).sources);
      throw err;
    }
  } else if (!statSync(config.dataDir, { throwIfNoEntry: false })?.isDirectory()) {
    process.stderr.write(`error: no data directory at ${config.dataDir}\n`);
    throw new CliExit(EXIT_FAILURE);
  }
  // Loaded on use so `--help` and usage errors never depend on the registry's native SQLite module.
  const { createDeviceRegistry } = await import("../../broker/registry/index.ts");
  return createDeviceRegistry({ path: path.join(config.dataDir, REGISTRY_FILE) });
}

/**
 * Refuses an id no device can have before anything is opened: a malformed id is bad usage (exit 2, docs/errors.md),
 * not an unknown device, and must not create the data directory on its way to saying so.
 */
function requireDeviceId(id: string): void {
  if (isValidDeviceId(id)) return;
  process.stderr.write(`error: device id must be ${DEVICE_ID_RULE} (got ${JSON.stringify(id)})\n`);
  throw new CliExit(EXIT_USAGE);
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The fields docs/cli.md lists, by name: the record's internal ids (recordId, secretId) are not part of the output. */
function toJson(record: DeviceRecord, agentClassFallback: string | null): Record<string, unknown> {
  const { id, codec, agentClass, firmware, createdAt, lastSeen } = record;
  return { id, codec, agentClass, agentClassFallback, firmware, createdAt, lastSeen };
}

/** The AGENT CLASS cell: the class asked for, and what serves the device when the bridge does not serve that one. */
function agentClassCell(agentClass: string | null, fallback: string | null): string {
  if (agentClass === null) return "default";
  return fallback === null ? agentClass : `${agentClass} (not served; served by ${fallback})`;
}

/**
 * What serves each device in place of a class the bridge does not serve. The configured modules are imported (as
 * `start` does, with the config given) only when a device asks for a class: a fleet served by patterns alone lists
 * without them.
 */
async function fallbackOf(config: BridgeConfig, devices: readonly DeviceRecord[]): Promise<AgentClassFallback> {
  if (devices.every((d) => d.agentClass === null)) return () => null;
  return (await servedAgentClasses(config)).fallback;
}

function iso(ms: number | null): string {
  return ms === null ? "never" : new Date(ms).toISOString();
}

async function add(id: string | undefined, flags: Flags): Promise<void> {
  const codec = flags.codec as string | undefined;
  if (codec !== undefined && !(CODEC_NAMES as readonly string[]).includes(codec)) {
    process.stderr.write(`error: --codec must be one of ${CODEC_NAMES.join(", ")}\n`);
    throw new CliExit(EXIT_USAGE);
  }
  if (flags.count !== undefined || flags.prefix !== undefined) {
    await addMany(id, codec as CodecName | undefined, flags);
    return;
  }
  if (id === undefined) {
    process.stderr.write("error: give a device id, or --count N --prefix P for several\n");
    throw new CliExit(EXIT_USAGE);
  }
  requireDeviceId(id);
  const config = loadConfigOrExit(flags);
  const agentClass = await requireServedAgentClass(flags, config);
  const registry = await openRegistry(flags, "provision", config);
  try {
    const result = await registry.add(id, { codec: codec as CodecName | undefined, agentClass });
    switch (result.status) {
      case "created":
        if (flags.json) out(JSON.stringify({ id: result.device.id, secret: result.secret }));
        else {
          out(`device ${result.device.id} added`);
          out(`secret: ${result.secret}`);
          out("The secret is shown once and stored only as a hash: keep it now.");
          out(`Devices connect with client id and username ${result.device.id} and the secret as password.`);
        }
        return;
      case "exists":
        process.stderr.write(`error: device ${id} already exists (remove it first to issue a new secret)\n`);
        throw new CliExit(EXIT_FAILURE);
      case "invalid":
        process.stderr.write(`error: ${result.message}\n`);
        throw new CliExit(EXIT_USAGE);
    }
  } finally {
    registry.close();
  }
}

async function addMany(id: string | undefined, codec: CodecName | undefined, flags: Flags): Promise<void> {
  if (id !== undefined || flags.count === undefined || flags.prefix === undefined) {
    process.stderr.write("error: --count and --prefix go together and replace the id argument\n");
    throw new CliExit(EXIT_USAGE);
  }
  const planned = batchIds(String(flags.count), String(flags.prefix));
  if (!planned.ok) {
    process.stderr.write(`error: ${planned.message}\n`);
    throw new CliExit(EXIT_USAGE);
  }
  const config = loadConfigOrExit(flags);
  const agentClass = await requireServedAgentClass(flags, config);
  const registry = await openRegistry(flags, "provision", config);
  try {
    await addBatch(registry, planned.ids, { codec, agentClass, json: flags.json === true }, out);
  } finally {
    registry.close();
  }
}

async function list(flags: Flags): Promise<void> {
  const config = loadConfigOrExit(flags);
  const registry = await openRegistry(flags, "existing", config);
  try {
    const records = registry.list();
    const fallback = await fallbackOf(config, records);
    let devices = records.map((record) => ({ record, fallback: fallback(record) }));
    const onlyFallback = flags.agentClassFallback === true;
    if (onlyFallback) devices = devices.filter((d) => d.fallback !== null);
    if (flags.json) {
      out(escapeControls(JSON.stringify(devices.map((d) => toJson(d.record, d.fallback)))));
      return;
    }
    if (devices.length === 0) {
      out(
        onlyFallback
          ? "no devices ask for an agent class this bridge does not serve"
          : "no devices (add one with: agent-bridge devices add ID)",
      );
      return;
    }
    out(["ID", "CODEC", "AGENT CLASS", "FIRMWARE", "CREATED", "LAST SEEN"].join("\t"));
    for (const { record: d, fallback: servedBy } of devices) {
      out(
        [
          d.id,
          d.codec ?? "default",
          agentClassCell(d.agentClass, servedBy),
          d.firmware === null ? "-" : escapeControls(d.firmware),
          iso(d.createdAt),
          iso(d.lastSeen),
        ].join("\t"),
      );
    }
  } finally {
    registry.close();
  }
}

/**
 * What happens to the removed device's live session and its agent's data. This process cannot reach a running bridge's
 * sessions; the bridge notices the removal itself within `mqtt.registryCheckMs` (broker/registry-watch.ts) and ends
 * the session. The agent's data stays (a device removed to issue it a new secret keeps its history).
 */
function sessionNote(id: string, registryCheckMs: number): string {
  const data = `its agent data stays (remove it with \`devices rm ${id} --purge\` while no bridge runs, or DELETE /api/devices/${id} while one does)`;
  if (registryCheckMs === 0) {
    return `a bridge running on this data directory keeps its live MQTT session (mqtt.registryCheckMs is 0) and refuses its next connect; ${data}`;
  }
  const within = registryCheckMs % 1000 === 0 ? `${registryCheckMs / 1000} s` : `${registryCheckMs} ms`;
  return `a bridge running on this data directory ends its live MQTT session within ${within} and refuses its reconnects; ${data}`;
}

/** What `rm` removed, in the shape of the API's `DELETE /api/devices/:id` answer. */
function removal(id: string, record: boolean, agentData: boolean): string {
  return JSON.stringify({ id, removed: { record, agentData } });
}

/**
 * A registry written before "." and ".." were refused may hold them; their records can still be removed. Never
 * purged: an agent's files are named by its id, and there these two mean a directory.
 */
const LEGACY_DOT_IDS: readonly string[] = [".", ".."];

async function remove(id: string, flags: Flags): Promise<void> {
  if (flags.purge === true || !LEGACY_DOT_IDS.includes(id)) requireDeviceId(id);
  const config = loadConfigOrExit(flags);
  const registry = await openRegistry(flags, "existing", config);
  try {
    if (flags.purge === true) {
      await purge(id, config, registry, flags.json === true);
      return;
    }
    if (!registry.remove(id)) {
      // Removed earlier without --purge: say where the rest of it is.
      const left = existsSync(agentDatabaseFile(config.dataDir, id));
      const hint = left ? `; its agent data is still there: \`devices rm ${id} --purge\` removes it` : "";
      process.stderr.write(`error: no device ${id}${hint}\n`);
      throw new CliExit(EXIT_FAILURE);
    }
    if (flags.json) out(removal(id, true, false));
    else out(`device ${id} removed: ${sessionNote(id, config.mqtt.registryCheckMs)}`);
  } finally {
    registry.close();
  }
}

async function purge(id: string, config: BridgeConfig, registry: DeviceRegistry, json: boolean): Promise<void> {
  const outcome = await purgeDevice(config.dataDir, registry, id);
  if (outcome.status === "bridge-running") {
    process.stderr.write(
      `error: ${outcome.message}: nothing removed. A running bridge holds the agents' data; remove the device through it ` +
        `(DELETE /api/devices/${id}, or "Delete device" on the dashboard), or stop it and run this again\n`,
    );
    throw new CliExit(EXIT_FAILURE);
  }
  if (!outcome.record && !outcome.agentData) {
    process.stderr.write(`error: no device ${id} (no registry record and no agent data)\n`);
    throw new CliExit(EXIT_FAILURE);
  }
  if (json) {
    out(removal(id, outcome.record, outcome.agentData));
    return;
  }
  const what = [outcome.record ? "registry record" : "", outcome.agentData ? "agent data" : ""].filter(Boolean);
  const already = outcome.record ? "" : " (its registry record was removed earlier)";
  out(`device ${id} removed: ${what.join(" and ")}${already}`);
}

/** Adds the `devices` command group to `program`. */
export function registerDevicesCommand(program: Command): void {
  const devices = program.command("devices").description("provision, list and remove devices");
  const common = (cmd: Command) =>
    cmd
      .option("-c, --config <file>", "JSON config file (or BRIDGE_CONFIG)")
      .option("--data-dir <dir>", "data directory (or BRIDGE_DATA_DIR; default ./data)");
  common(
    devices
      .command("add")
      .description("provision a device (or --count of them) and print the secret(s) once")
      .argument("[id]", `device id (${DEVICE_ID_RULE}), also its MQTT client id`)
      .option("--count <n>", "provision n devices, ids --prefix plus 1..n zero-padded to the width of n")
      .option("--prefix <p>", "id prefix for --count (e.g. sensor- gives sensor-001 .. sensor-200)")
      .option("--codec <codec>", `the device's codec: ${CODEC_NAMES.join(", ")}`)
      .option(
        "--agent-class <name>",
        "agent class that serves the device: DeviceAgent or a class of the config's agents.classes (default: by pattern)",
      )
      .option("--json", 'print {"id":...,"secret":...}, one object per line (what sim --credentials reads)'),
  ).action((id: string | undefined, flags: Flags) => add(id, flags));
  common(
    devices
      .command("list")
      .description("list provisioned devices")
      .option(
        "--agent-class-fallback",
        "only devices asking for an agent class the config's bridge does not serve (served by a fallback class)",
      )
      .option("--json", "print JSON"),
  ).action((flags: Flags) => list(flags));
  common(
    devices
      .command("rm")
      .description("remove a device (its credentials); with --purge its agent's data too")
      .argument("<id>", "device id")
      .option("--purge", "also remove the agent's data (database, schedules, queue); only while no bridge runs")
      .option("--json", 'print {"id":...,"removed":{"record":...,"agentData":...}} as the API\'s DELETE answers'),
  ).action((id: string, flags: Flags) => remove(id, flags));
}
