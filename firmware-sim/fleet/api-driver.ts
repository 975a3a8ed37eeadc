/**
 * Drives the bridge's operator API during a run, as an operator or a backend would: commands and desired-state
 * changes at a steady rate per device, so a run exercises the command outbox and shadow convergence, not only
 * telemetry. After the run it reads back the shadows it changed: the bridge's delta must be empty. The simulator
 * stays a device-side tool: it speaks HTTP to the documented API only, never to server code.
 */
import { BridgeError } from "../../errors/index.ts";
import type { RandomSource } from "../clock.ts";
import { SimErrorCode } from "../errors.ts";
import { DEFAULT_REQUEST_TIMEOUT_MS, fetchWithin } from "../http-request.ts";
import type { ViolationKind } from "../invariants/violations.ts";
import type { ScheduledTask, TickScheduler } from "../scheduler.ts";

/** Options of the API driver (`FleetOptions.driveApi`, `sim --commands-per-min / --desired-per-min`). */
export interface ApiDriveOptions {
  /** The bridge's operator HTTP base URL, e.g. http://127.0.0.1:8080. */
  apiUrl: string;
  /** Operator bearer token. */
  token?: string;
  /** Commands per minute per online device: `ping`, `echo` and `selftest` (unknown to the firmware: it fails). Default 0. */
  commandsPerMin?: number;
  /** Desired-state changes (`{target}`) per minute per online shadow device (thermostat). Default 0. */
  desiredPerMin?: number;
  /** API requests in flight at once. Default 8. */
  concurrency?: number;
  /** Requests waiting beyond this are skipped (counted), so a slow API cannot grow memory. Default 10000. */
  maxQueued?: number;
  /** Limit of one request, headers and body, in ms; past it the request counts as failed. Default 30000. */
  requestTimeoutMs?: number;
  /** Injected HTTP client. Default global fetch. */
  fetch?: typeof fetch;
}

/** What the driver did, in the fleet report. */
export interface ApiDriveResult {
  commandsIssued: number;
  desiredIssued: number;
  /** Requests the API refused or that failed (each is also an `api-request-failed` violation). */
  refused: number;
  /** Requests not made because too many were waiting. */
  skipped: number;
  /** Requests still queued (not started) when the run stopped: dropped, never sent. */
  unsentAtStop: number;
  /** Shadows read back after the run (devices whose desired state was changed). */
  shadowsChecked: number;
  /** Of those, shadows whose delta was not empty (each a `state-not-converged` violation). */
  notConverged: number;
}

/** A device the driver may address. */
export interface ApiDriveTarget {
  readonly deviceId: string;
  readonly hasShadow: boolean;
  /** True while the device is connected: commands go to devices that can take them now. */
  online(): boolean;
  /**
   * This device's stream for its phase and its requests' choices (a seeded fleet gives each device its own, so which
   * devices happen to be online does not change what the others draw). Default: the driver's `random`.
   */
  readonly random?: RandomSource;
}

/** A running driver. */
export interface ApiDriver {
  /** Stops issuing, drops the queued requests that have not started (counted in `unsentAtStop`) and waits for those in flight. */
  stop(): Promise<void>;
  /** Reads back the changed shadows (call after the fleet drained). */
  checkConvergence(): Promise<void>;
  result(): ApiDriveResult;
}

const COMMAND_NAMES = ["ping", "echo", "selftest"] as const;

function rate(field: string, value: number | undefined): number {
  const v = value ?? 0;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 60_000) {
    throw new BridgeError(SimErrorCode.options, `driveApi.${field} must be a number from 0 to 60000, got ${v}`, {
      field: `driveApi.${field}`,
    });
  }
  return v;
}

/** Validates `options` (BRIDGE_ERR_SIM_OPTIONS naming the field) without starting anything. */
export function validateApiDriveOptions(options: ApiDriveOptions): void {
  try {
    new URL(options.apiUrl);
  } catch (err) {
    throw new BridgeError(
      SimErrorCode.options,
      `driveApi.apiUrl is not a URL: ${options.apiUrl}`,
      { field: "driveApi.apiUrl" },
      { cause: err },
    );
  }
  rate("commandsPerMin", options.commandsPerMin);
  rate("desiredPerMin", options.desiredPerMin);
  const t = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (!Number.isFinite(t) || t < 1 || t > 3_600_000) {
    throw new BridgeError(SimErrorCode.options, `driveApi.requestTimeoutMs must be from 1 to 3600000, got ${t}`, {
      field: "driveApi.requestTimeoutMs",
    });
  }
  // Unchecked, a negative one skipped every request in silence and NaN never skipped one (an unbounded queue).
  const q = options.maxQueued ?? 10_000;
  if (!Number.isInteger(q) || q < 0 || q > 10_000_000) {
    throw new BridgeError(SimErrorCode.options, `driveApi.maxQueued must be an integer from 0 to 10000000, got ${q}`, {
      field: "driveApi.maxQueued",
    });
  }
  const c = options.concurrency ?? 8;
  if (!Number.isInteger(c) || c < 1 || c > 1000) {
    throw new BridgeError(SimErrorCode.options, `driveApi.concurrency must be an integer from 1 to 1000, got ${c}`, {
      field: "driveApi.concurrency",
    });
  }
}

/** Starts issuing requests on `scheduler`; each device gets a random phase so the fleet's requests spread out. */
export function startApiDriver(
  options: ApiDriveOptions,
  targets: readonly ApiDriveTarget[],
  scheduler: TickScheduler,
  random: RandomSource,
  violation: (kind: ViolationKind, deviceId: string, message: string) => void,
): ApiDriver {
  validateApiDriveOptions(options);
  const doFetch = options.fetch ?? fetch;
  const base = options.apiUrl.replace(/\/+$/, "");
  const headers: Record<string, string> = { accept: "application/json", "content-type": "application/json" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const concurrency = options.concurrency ?? 8;
  const maxQueued = options.maxQueued ?? 10_000;
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const result: ApiDriveResult = {
    commandsIssued: 0,
    desiredIssued: 0,
    refused: 0,
    skipped: 0,
    unsentAtStop: 0,
    shadowsChecked: 0,
    notConverged: 0,
  };
  const changedShadows = new Set<string>();
  const waiting: Array<() => Promise<void>> = [];
  const tasks = new Set<ScheduledTask>();
  let inFlight = 0;
  let stopped = false;
  let idle: (() => void) | undefined;

  const pump = (): void => {
    while (inFlight < concurrency && waiting.length > 0) {
      const job = waiting.shift() as () => Promise<void>;
      inFlight++;
      void job().finally(() => {
        inFlight--;
        pump();
      });
    }
    if (inFlight === 0 && waiting.length === 0) idle?.();
  };
  const enqueue = (job: () => Promise<void>): void => {
    if (waiting.length >= maxQueued) {
      result.skipped++;
      return;
    }
    waiting.push(job);
    pump();
  };
  const request = async (deviceId: string, method: string, path: string, body: unknown): Promise<boolean> => {
    const url = `${base}/api/devices/${encodeURIComponent(deviceId)}${path}`;
    try {
      const init = { method, headers, body: JSON.stringify(body) };
      const response = await fetchWithin(doFetch, url, init, timeoutMs, async (r) => ({
        ok: r.ok,
        status: r.status,
        text: await r.text(),
      }));
      if (response.ok) return true;
      result.refused++;
      violation(
        "api-request-failed",
        deviceId,
        `${method} ${path} answered ${response.status}: ${response.text.slice(0, 200)}`,
      );
    } catch (err) {
      result.refused++;
      violation("api-request-failed", deviceId, `${method} ${path} failed: ${(err as Error).message}`);
    }
    return false;
  };

  const every = (intervalMs: number, target: ApiDriveTarget, action: () => void): void => {
    const fire = (): void => {
      if (stopped) return;
      if (target.online()) action();
      arm(intervalMs);
    };
    const arm = (delayMs: number): void => {
      const task = scheduler.after(delayMs, () => {
        tasks.delete(task);
        fire();
      });
      tasks.add(task);
    };
    arm((target.random ?? random)() * intervalMs);
  };

  const commandsPerMin = rate("commandsPerMin", options.commandsPerMin);
  const desiredPerMin = rate("desiredPerMin", options.desiredPerMin);
  for (const target of targets) {
    const id = target.deviceId;
    const draw = target.random ?? random;
    if (commandsPerMin > 0) {
      every(60_000 / commandsPerMin, target, () => {
        const name = COMMAND_NAMES[Math.floor(draw() * COMMAND_NAMES.length)] ?? "ping";
        const args = name === "echo" ? { n: Math.floor(draw() * 1000) } : undefined;
        result.commandsIssued++;
        enqueue(async () => {
          await request(id, "POST", "/commands", args === undefined ? { name } : { name, args });
        });
      });
    }
    if (desiredPerMin > 0 && target.hasShadow) {
      every(60_000 / desiredPerMin, target, () => {
        const targetTemp = 16 + Math.floor(draw() * 10);
        result.desiredIssued++;
        enqueue(async () => {
          if (await request(id, "PUT", "/shadow/desired", { state: { target: targetTemp } })) changedShadows.add(id);
        });
      });
    }
  }

  return {
    async stop() {
      stopped = true;
      for (const task of tasks) scheduler.cancel(task);
      tasks.clear();
      // Up to maxQueued requests may wait behind a slow API; sending them all would hold stop() for as long as
      // they take. Those already sent finish, so what they created is delivered during the drain.
      result.unsentAtStop += waiting.length;
      waiting.length = 0;
      if (inFlight === 0) return;
      await new Promise<void>((resolve) => {
        idle = resolve;
      });
    },
    async checkConvergence() {
      const ids = [...changedShadows];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < ids.length) {
          const id = ids[next++] as string;
          const url = `${base}/api/devices/${encodeURIComponent(id)}/shadow`;
          result.shadowsChecked++;
          try {
            const body = (await fetchWithin(doFetch, url, { headers }, timeoutMs, (response) => {
              if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
              return response.json();
            })) as { delta?: Record<string, unknown> };
            const delta = body.delta ?? {};
            if (Object.keys(delta).length > 0) {
              result.notConverged++;
              violation("state-not-converged", id, `the bridge's shadow still has a delta: ${JSON.stringify(delta)}`);
            }
          } catch (err) {
            result.refused++;
            violation("api-request-failed", id, `shadow read-back failed: ${(err as Error).message}`);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, ids.length)) }, worker));
    },
    result: () => ({ ...result }),
  };
}
