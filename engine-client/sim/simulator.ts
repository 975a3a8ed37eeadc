/** Starting and stopping one simulator instance. */
import type { AddressInfo } from "node:net";
import { type SimRequestRecord, SimContext } from "./context.ts";
import { applyFaults } from "./handlers/admin.ts";
import { type EngineSimFaults, type EngineSimInit, NO_FAULTS, resolveEngineSimOptions } from "./options.ts";
import { createSimServer } from "./server.ts";
import { type EngineSimStats, simStats } from "./stats.ts";
import { BridgeError } from "../../errors/index.ts";

/** A running simulator. */
export interface EngineSimulator {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  readonly model: string;
  stats(): EngineSimStats;
  /** Recorded chat requests, oldest first (at most `maxRecords`). */
  requests(): SimRequestRecord[];
  /** Merges faults into the live set (same rules as `POST /admin/faults`). */
  setFaults(faults: Partial<EngineSimFaults>): void;
  clearFaults(): void;
  /** Forgets the recorded requests and the prefix cache. */
  reset(): void;
  /** Stops accepting, aborts running generations, closes every socket. */
  close(): Promise<void>;
}

/**
 * Starts a simulator. Options are validated (BRIDGE_ERR_CONFIG naming the field).
 *
 * @example
 * const sim = await startEngineSimulator({ timeScale: 0.01 });
 * const engine = createEngineClient({ urls: [sim.url] });
 * // ...
 * await sim.close();
 */
export async function startEngineSimulator(init: EngineSimInit = {}): Promise<EngineSimulator> {
  const options = resolveEngineSimOptions(init);
  const ctx = new SimContext(options);
  const { server, sockets } = createSimServer(ctx);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    model: options.model,
    stats: () => simStats(ctx),
    requests: () => [...ctx.records],
    setFaults: (faults) => {
      const problem = applyFaults(ctx, faults);
      if (problem !== undefined) throw new BridgeError("BRIDGE_ERR_CONFIG", problem, { field: "faults" });
    },
    clearFaults: () => {
      ctx.faults = { ...NO_FAULTS };
    },
    reset: () => {
      ctx.records.length = 0;
      ctx.cache.clear();
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        ctx.scheduler.close();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
