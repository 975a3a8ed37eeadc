/** The few operator API calls the backup benchmark makes on the bridge under test. */
import type { Target } from "../fleet/targets.ts";

export class BridgeApi {
  readonly #url: string;
  readonly #token: string;

  constructor(target: Target, token: string) {
    if (target.apiUrl === undefined) throw new Error("the bridge reported no HTTP address");
    this.#url = target.apiUrl;
    this.#token = token;
  }

  async #request(method: "GET" | "POST", route: string, body?: unknown): Promise<Response> {
    const response = await fetch(`${this.#url}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${this.#token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${route}: HTTP ${response.status} ${await response.text()}`);
    return response;
  }

  /** Wakes agent `id` (it reads its shadow), so it is in memory when the backup runs. */
  async wake(id: string): Promise<void> {
    await (await this.#request("GET", `/api/devices/${encodeURIComponent(id)}/shadow`)).arrayBuffer();
  }

  /** A backup into `dir` under the bridge's backup.dir; what it answered. */
  async backup(dir: string): Promise<{ dir: string; agents: number; bytes: number; durationMs: number }> {
    return (await (await this.#request("POST", "/api/backup", { dir })).json()) as {
      dir: string;
      agents: number;
      bytes: number;
      durationMs: number;
    };
  }

  /** A gauge of /metrics (the first sample of that name); NaN when absent. */
  async gauge(name: string): Promise<number> {
    const text = await (await this.#request("GET", "/metrics")).text();
    const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(" ") + 1));
  }
}
