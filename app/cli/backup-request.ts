/**
 * `agent-bridge backup` against a running bridge: `POST /api/backup` on its operator HTTP server, with the token the
 * bridge uses (`http.apiToken`, else `<dataDir>/api-token`). node:http rather than fetch: fetch gives up on an answer
 * that takes more than five minutes to start, and a large fleet's backup may.
 */
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import path from "node:path";
import { API_TOKEN_FILE } from "../api/token.ts";
import type { BridgeConfig } from "../config/index.ts";
import { listenerUrl } from "../listener-url.ts";

/** What the bridge answered: its status and JSON body. */
export interface BackupAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** The URL of the bridge's operator server as a client on this machine reaches it. */
export function operatorUrl(config: BridgeConfig): string {
  return listenerUrl("http", { host: config.http.host, port: config.http.port });
}

/** The token the bridge answers to; undefined when neither the setting nor the file gives one. */
export function operatorToken(config: BridgeConfig): string | undefined {
  if (config.http.apiToken !== undefined && config.http.apiToken !== "") return config.http.apiToken;
  try {
    return readFileSync(path.join(config.dataDir, API_TOKEN_FILE), "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Posts `{dir}` (or `{}`) to `<baseUrl>/api/backup`; rejects only when the bridge cannot be reached. */
export function requestBackup(baseUrl: string, token: string, dir: string | undefined): Promise<BackupAnswer> {
  const url = new URL("/api/backup", baseUrl);
  const payload = JSON.stringify(dir === undefined ? {} : { dir });
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: Record<string, unknown>;
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch {
            body = {
              error: { code: "BRIDGE_ERR_BACKUP_FAILED", message: `the bridge answered ${text.slice(0, 200)}` },
            };
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}
