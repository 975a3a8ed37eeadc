/**
 * Builds the bridge configuration from its sources, later ones winning: defaults < config file < environment < flags.
 * Every problem is returned as a value naming the field and where the bad value came from, so the CLI can print them
 * all at once and exit 2; nothing here throws for bad input.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import path from "node:path";
import type { z } from "zod";
import { parseJson } from "../../codecs/json/json-parse.ts";
import { DecodeFault, DUPLICATE_MAP_KEY } from "../../codecs/schema/fault.ts";
import { withoutByteOrderMark } from "../../codecs/text-utf8.ts";
import { backupDirOf } from "../backup/backup-dir.ts";
import { jsonSyntaxProblem } from "./json-problem.ts";
import { type BridgeConfig, configSchema } from "./schema.ts";
import { defaultHttpMaxConnections } from "./http-connections.ts";
import { convertText, flagAttribute, SETTING_SOURCES } from "./sources.ts";

/** One configuration problem. `toString()` gives the line the CLI prints. */
export interface ConfigIssue {
  /** Dotted setting path (`mqtt.port`), or `config file`. */
  field: string;
  /** The rule, phrased to follow the field name. */
  message: string;
  /** Where the value came from: `BRIDGE_MQTT_PORT`, `--mqtt-port`, `config file bridge.json`, `default`. */
  source: string;
}

export type LoadConfigResult =
  | { ok: true; config: BridgeConfig; sources: ReadonlyMap<string, string> }
  | { ok: false; issues: ConfigIssue[] };

export interface LoadConfigOptions {
  /** Path of a JSON config file. None by default. */
  file?: string;
  /** Environment to read `BRIDGE_*` variables from. Default: none (the CLI passes `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Parsed `start` flags by commander attribute name (`mqttPort`). Default: none. */
  flags?: Readonly<Record<string, unknown>>;
  /** Settings given as an object (tests, embedding), applied after the file and before the environment. */
  overrides?: Readonly<Record<string, unknown>>;
  /**
   * Directory relative module paths and file paths of the config file and the overrides resolve against (those of the
   * environment and flags resolve against the working directory). Default: the config file's, else cwd.
   */
  baseDir?: string;
}

/** Formats an issue the way the CLI prints it. */
export function formatConfigIssue(issue: ConfigIssue): string {
  return `config error: ${issue.field} ${issue.message} (from ${issue.source})`;
}

type Tree = Record<string, unknown>;

function isPlainObject(value: unknown): value is Tree {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/**
 * Sets `dotted` in `tree`; false when a section on the way holds something that is not an object (`"mqtt": 1883` in
 * the file). That value is left for the schema to report: replacing it would drop the file's mistake silently.
 */
function setPath(tree: Tree, dotted: string, value: unknown): boolean {
  const parts = dotted.split(".");
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === undefined) node[part] = {};
    else if (!isPlainObject(next)) return false;
    node = node[part] as Tree;
  }
  node[parts[parts.length - 1]] = value;
  return true;
}

/** Deep merge of plain objects; arrays and scalars of `top` replace those of `base`. */
function merge(base: Tree, top: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(top)) {
    const prev = Object.hasOwn(out, key) ? out[key] : undefined;
    // Defined, not assigned: `out.__proto__ = v` (JSON.parse keeps a file's `__proto__` as an own key) would make the
    // section the prototype, whose settings the schema then read as given instead of refusing the unknown key.
    Object.defineProperty(out, key, {
      value: isPlainObject(prev) && isPlainObject(value) ? merge(prev, value) : value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** Records the source of every leaf of `tree` (arrays and records count as leaves below known objects). */
function recordSources(tree: Tree, label: string, sources: Map<string, string>, prefix = ""): void {
  for (const [key, value] of Object.entries(tree)) {
    const dotted = prefix ? `${prefix}.${key}` : key;
    sources.set(dotted, label);
    if (isPlainObject(value) && dotted !== "agents.config") recordSources(value, label, sources, dotted);
  }
}

/**
 * Where the value of setting `dotted` came from, by its nearest recorded ancestor (`agents.config.X.y` is recorded as
 * `agents.config`); `default` when no source set it.
 */
export function sourceOf(sources: ReadonlyMap<string, string>, dotted: string): string {
  const parts = dotted.replace(/\[\d+\]/g, "").split(".");
  for (let n = parts.length; n > 0; n -= 1) {
    const found = sources.get(parts.slice(0, n).join("."));
    if (found) return found;
  }
  return "default";
}

/**
 * The path of a key an object of the file holds twice, or undefined. JSON.parse keeps the last one silently: a second
 * `http` section would drop the first one's API token, and a token would be generated in its place. The codecs'
 * strict JSON parser refuses such a key and names its path; its other refusals are not this check's to make.
 */
function duplicateKey(text: string): string | undefined {
  try {
    parseJson(text, Number.MAX_SAFE_INTEGER);
  } catch (err) {
    if (err instanceof DecodeFault && err.problem === DUPLICATE_MAP_KEY) return err.field ?? "config file";
  }
  return undefined;
}

function readFileLayer(file: string, issues: ConfigIssue[]): Tree {
  const source = `config file ${file}`;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unknown error";
    issues.push({ field: "config file", message: `cannot be read (${code})`, source });
    return {};
  }
  // Windows editors (Notepad, PowerShell's UTF-8) start a file with one, as the operator API's bodies may.
  text = withoutByteOrderMark(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    issues.push({ field: "config file", message: `is not valid JSON (${jsonSyntaxProblem(err, text)})`, source });
    return {};
  }
  const twice = duplicateKey(text);
  if (twice !== undefined) {
    issues.push({ field: twice, message: "is given twice in the file (only one may stand)", source });
    return {};
  }
  if (!isPlainObject(parsed)) {
    issues.push({ field: "config file", message: "must hold a JSON object", source });
    return {};
  }
  return parsed;
}

function issuesFromZod(error: z.ZodError, sources: ReadonlyMap<string, string>): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const dotted = issue.path
      .map((p) => (typeof p === "number" ? `[${p}]` : String(p)))
      .join(".")
      .replace(/\.\[/g, "[");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const field = dotted ? `${dotted}.${key}` : key;
        out.push({ field, message: "is not a known setting", source: sourceOf(sources, field) });
      }
      continue;
    }
    out.push({ field: dotted || "config", message: issue.message, source: sourceOf(sources, dotted) });
  }
  return out;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|::1|\[::1\])$/i;

/** True for addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.test(host);
}

function checkReadable(file: string | undefined, field: string, sources: ReadonlyMap<string, string>): ConfigIssue[] {
  if (file === undefined) return [];
  try {
    accessSync(file, constants.R_OK);
    return [];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unknown error";
    // The path as resolved: a relative one was looked for in a directory the operator may not have had in mind.
    return [
      { field, message: `names a file that cannot be read (${code}: ${file})`, source: sourceOf(sources, field) },
    ];
  }
}

/** Settings of the MQTT over TLS listener that mean nothing without its certificate and key. */
const TLS_LISTENER_SETTINGS = [
  "mqtt.tls.port",
  "mqtt.tls.caFile",
  "mqtt.tls.proxyProtocol.trustedSources",
  "mqtt.tls.proxyProtocol.headerTimeoutMs",
] as const;

/** Rules that span fields, checked once the shape is valid. */
function crossChecks(config: BridgeConfig, sources: ReadonlyMap<string, string>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const tls = config.mqtt.tls;
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    const missing = tls.certFile === undefined ? "mqtt.tls.certFile" : "mqtt.tls.keyFile";
    const given = tls.certFile === undefined ? "mqtt.tls.keyFile" : "mqtt.tls.certFile";
    issues.push({ field: missing, message: `is required with ${given}`, source: sourceOf(sources, given) });
  }
  issues.push(...checkReadable(tls.certFile, "mqtt.tls.certFile", sources));
  issues.push(...checkReadable(tls.keyFile, "mqtt.tls.keyFile", sources));
  issues.push(...checkReadable(tls.caFile, "mqtt.tls.caFile", sources));
  // Node refuses a server whose head may take longer than the whole request (ERR_OUT_OF_RANGE as it is built).
  const { headersTimeoutMs, requestTimeoutMs } = config.http;
  if (headersTimeoutMs > requestTimeoutMs) {
    // Blame the one the operator set: a requestTimeoutMs under the default head timeout is the mistake then.
    if (sources.has("http.headersTimeoutMs") || !sources.has("http.requestTimeoutMs")) {
      const field = "http.headersTimeoutMs";
      const message = `must not exceed http.requestTimeoutMs (${requestTimeoutMs})`;
      issues.push({ field, message, source: sourceOf(sources, field) });
    } else {
      const field = "http.requestTimeoutMs";
      const message = `must be at least http.headersTimeoutMs (${headersTimeoutMs})`;
      issues.push({ field, message, source: sourceOf(sources, field) });
    }
  }
  issues.push(...authBlockChecks(config, sources));
  // A setting of the TLS listener given without the listener (no certificate and key): a mistake, not a silent no-op
  // (the operator who gave `--tls-port` or `--tls-ca` believes devices can connect over TLS).
  if (tls.certFile === undefined && tls.keyFile === undefined) {
    for (const field of TLS_LISTENER_SETTINGS) {
      const given =
        field === "mqtt.tls.proxyProtocol.trustedSources"
          ? tls.proxyProtocol.trustedSources.length > 0
          : sources.has(field);
      if (given)
        issues.push({
          field,
          message: "needs MQTT over TLS (mqtt.tls.certFile and keyFile)",
          source: sourceOf(sources, field),
        });
    }
  }
  return issues;
}

/**
 * A block shorter than one refill ends with no failed authentication forgiven yet, so the address would be refused as
 * server-busy after it (the broker refuses the pair too). Irrelevant while the per-address limit is off.
 */
function authBlockChecks(config: BridgeConfig, sources: ReadonlyMap<string, string>): ConfigIssue[] {
  const { authFailuresPerAddress, authBlockMs, authFailureRefillMs } = config.mqtt.limits;
  if (authFailuresPerAddress === 0 || authBlockMs >= authFailureRefillMs) return [];
  const block = "mqtt.limits.authBlockMs";
  const refill = "mqtt.limits.authFailureRefillMs";
  // Blame the one the operator set, as for the HTTP timeouts: a refill raised past the default block is the mistake.
  if (sources.has(block) || !sources.has(refill)) {
    return [
      {
        field: block,
        message: `must be at least ${refill} (${authFailureRefillMs})`,
        source: sourceOf(sources, block),
      },
    ];
  }
  return [{ field: refill, message: `must not exceed ${block} (${authBlockMs})`, source: sourceOf(sources, refill) }];
}

/**
 * Makes relative paths absolute (module paths of agent classes, TLS files): against `baseDir` when written in the config
 * file or the overrides, against the working directory when given in the environment or as a flag, where a shell user
 * typed them (`--tls-cert certs/bridge.pem` next to `-c /etc/agent-bridge/bridge.json` means ./certs, not /etc/...).
 */
function resolvePaths(config: BridgeConfig, baseDir: string, sources: ReadonlyMap<string, string>): BridgeConfig {
  const fromShell = (field: string): boolean => {
    const source = sources.get(field);
    const setting = SETTING_SOURCES.find((s) => s.path === field);
    return source !== undefined && (source === setting?.env || source === setting?.flag);
  };
  const tlsFile = (p: string | undefined, field: string) =>
    p === undefined ? undefined : path.resolve(fromShell(field) ? process.cwd() : baseDir, p);
  return {
    ...config,
    dataDir: path.resolve(config.dataDir),
    // Like dataDir, against the working directory wherever it comes from; its default follows dataDir.
    backup: { dir: backupDirOf(config) },
    mqtt: {
      ...config.mqtt,
      tls: {
        ...config.mqtt.tls,
        certFile: tlsFile(config.mqtt.tls.certFile, "mqtt.tls.certFile"),
        keyFile: tlsFile(config.mqtt.tls.keyFile, "mqtt.tls.keyFile"),
        caFile: tlsFile(config.mqtt.tls.caFile, "mqtt.tls.caFile"),
      },
    },
    agents: {
      ...config.agents,
      classes: config.agents.classes.map((c) => ({
        ...c,
        // Bare names ("my-agents-package") are package imports; only paths are resolved.
        module: c.module.startsWith(".") || path.isAbsolute(c.module) ? path.resolve(baseDir, c.module) : c.module,
      })),
    },
  };
}

/** Fills the settings whose default follows another setting, where no source gave them. */
function withDerivedDefaults(config: BridgeConfig, sources: ReadonlyMap<string, string>): BridgeConfig {
  if (sources.has("http.maxConnections")) return config;
  const maxConnections = defaultHttpMaxConnections(config.mqtt.limits.maxConnections);
  return { ...config, http: { ...config.http, maxConnections } };
}

/**
 * Loads and validates the configuration.
 *
 * @example
 * const result = loadConfig({ file: "bridge.json", env: process.env, flags: { mqttPort: "0" } });
 * if (!result.ok) for (const issue of result.issues) console.error(formatConfigIssue(issue));
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadConfigResult {
  const issues: ConfigIssue[] = [];
  const sources = new Map<string, string>();
  let tree: Tree = {};

  if (options.file !== undefined) {
    const fileTree = readFileLayer(options.file, issues);
    recordSources(fileTree, `config file ${options.file}`, sources);
    tree = merge(tree, fileTree);
  }
  if (options.overrides !== undefined) {
    const overrides = { ...options.overrides };
    recordSources(overrides, "overrides", sources);
    tree = merge(tree, overrides);
  }
  const env = options.env ?? {};
  const flags = options.flags ?? {};
  for (const setting of SETTING_SOURCES) {
    const raw = setting.env === undefined ? undefined : env[setting.env];
    if (raw !== undefined && raw !== "" && setPath(tree, setting.path, convertText(setting.kind, raw))) {
      sources.set(setting.path, setting.env as string);
    }
  }
  for (const setting of SETTING_SOURCES) {
    if (setting.flag === undefined) continue;
    const raw = flags[flagAttribute(setting.flag)];
    if (raw === undefined) continue;
    let value: unknown = raw;
    if (typeof raw === "string") value = convertText(setting.kind, raw);
    else if (Array.isArray(raw)) value = raw.flatMap((r) => (typeof r === "string" ? convertText("list", r) : [r]));
    if (setPath(tree, setting.path, value)) sources.set(setting.path, setting.flag);
  }
  if (issues.length > 0) return { ok: false, issues };

  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) return { ok: false, issues: issuesFromZod(parsed.error, sources) };
  const baseDir =
    options.baseDir ?? (options.file === undefined ? process.cwd() : path.dirname(path.resolve(options.file)));
  const config = withDerivedDefaults(resolvePaths(parsed.data, baseDir, sources), sources);
  const crossIssues = crossChecks(config, sources);
  if (crossIssues.length > 0) return { ok: false, issues: crossIssues };
  return { ok: true, config, sources };
}
