/**
 * The operator API token: configured (config file or BRIDGE_API_TOKEN), or generated once into the data
 * directory so a fresh install is never open. The caller prints a generated token once at start.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BridgeError } from "../../errors/index.ts";
import { API_TOKEN_RULE, isValidApiToken } from "./token-rule.ts";

export { MIN_API_TOKEN_LENGTH } from "./token-rule.ts";

/** Name of the token file inside the data directory. */
export const API_TOKEN_FILE = "api-token";

/** Where the token came from; `generated` means it was just created and should be shown to the operator once. */
export type ApiTokenSource = "configured" | "file" | "generated";

/**
 * Returns the operator token: `configured` when given, else the one stored in `dataDir`, else a new random one
 * written there with mode 0600.
 *
 * @example
 * const { token, source } = loadOrCreateApiToken(config.dataDir, process.env.BRIDGE_API_TOKEN);
 * // Shown once on stdout, never through the logger: log lines get shipped and shared.
 * if (source === "generated") process.stdout.write(`operator API token: ${token}\n`);
 */
export function loadOrCreateApiToken(
  dataDir: string,
  configured?: string,
  random: (size: number) => Buffer = randomBytes,
): { token: string; source: ApiTokenSource } {
  if (configured !== undefined && configured !== "") {
    // Named as the setting is (docs/configuration.md), so the refusal reads like the config schema's own.
    checkToken(configured, "http.apiToken");
    return { token: configured, source: "configured" };
  }
  const file = join(dataDir, API_TOKEN_FILE);
  let stored: string | undefined;
  try {
    stored = readFileSync(file, "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new BridgeError(
        "BRIDGE_ERR_API_TOKEN",
        `cannot read the token file ${file}: ${(err as Error).message}`,
        { file },
        { cause: err },
      );
    }
  }
  // An empty file is a token too short, not an absent one: the `wx` create below would find it there every time and
  // recurse until the stack overflowed (a file left empty by a crash or power loss right after its create).
  if (stored !== undefined) {
    checkToken(stored, API_TOKEN_FILE, file);
    return { token: stored, source: "file" };
  }
  const token = random(32).toString("base64url");
  try {
    // Owner only, as makeDataDir creates it: the folder holds the token file among the bridge's other secrets.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // `wx` so two bridges starting on the same data dir never overwrite each other's token.
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return loadOrCreateApiToken(dataDir, undefined, random);
    throw new BridgeError(
      "BRIDGE_ERR_API_TOKEN",
      `cannot write the token file ${file}: ${(err as Error).message}`,
      { file },
      { cause: err },
    );
  }
  return { token, source: "generated" };
}

/**
 * Undoes the `generated` outcome of `loadOrCreateApiToken`: removes `<dataDir>/api-token` while it still holds
 * `token`. For a bridge whose build fails after generating it: nothing ever listened with it and nobody was shown it,
 * so left behind it would never be shown (a later start only says where it is); removed, the next start generates
 * one and shows it.
 */
export function removeGeneratedApiToken(dataDir: string, token: string): void {
  const file = join(dataDir, API_TOKEN_FILE);
  let stored: string;
  try {
    stored = readFileSync(file, "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  // Another token in its place is someone's own (the data directory is locked, so it should not happen): kept.
  if (stored === token) rmSync(file);
}

/** The token rule; a stored token's message names its file (`the token file D/api-token must hold ...`). */
function checkToken(token: string, field: string, file?: string): void {
  if (!isValidApiToken(token)) {
    const rule = API_TOKEN_RULE;
    if (file === undefined) {
      throw new BridgeError("BRIDGE_ERR_API_TOKEN", `${field} must be ${rule}`, { field, rule });
    }
    throw new BridgeError("BRIDGE_ERR_API_TOKEN", `the token file ${file} must hold ${rule}`, { field, rule, file });
  }
}
