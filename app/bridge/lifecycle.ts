/**
 * The bridge's lifecycle once its parts are built: the phase (created -> starting -> ready -> stopping -> stopped), the
 * listeners' real addresses, the start order and the stop stages. Apart from `createBridge`, which only builds and
 * wires the parts: what opens when, and what a stop during a start means, is one concept of its own.
 *
 * Start: runtime (resumes alarms, queues, outboxes) -> broker listeners -> HTTP; ready only when all are up.
 * Stop: refuse new upgrades -> close device sessions (broker), agent sockets and HTTP, together -> drain and commit
 * every agent -> close the engine client and the registry -> stop the metrics' monitors -> release the data-directory
 * lock.
 */
import type { Logger } from "pino";
import type { AgentRuntime } from "../../agents/index.ts";
import type { Broker } from "../../broker/index.ts";
import type { DeviceRegistry } from "../../broker/registry/index.ts";
import type { EngineClient } from "../../engine-client/index.ts";
import { BridgeError, hasErrorCode } from "../../errors/index.ts";
import type { HttpServer, Readiness } from "../http/index.ts";
import type { BridgeMetrics } from "../metrics/index.ts";
import type { AgentSocketServer } from "../ws/index.ts";
import type { DataDirLock } from "./data-dir-lock.ts";
import { logEngineHealthAtStart } from "./engine-health-at-start.ts";
import type { Address } from "./listeners.ts";
import { runStopStages } from "./stop-stages.ts";

/** Real addresses of every listener (port 0 resolved). Absent: that listener is off or not started yet. */
export interface BridgeAddresses {
  mqtt?: Address;
  mqtts?: Address;
  http?: Address;
}

export type BridgePhase = "created" | "starting" | "ready" | "stopping" | "stopped";

/** What a start opens and a stop closes. */
export interface LifecycleParts {
  runtime: AgentRuntime;
  broker: Broker;
  sockets: AgentSocketServer;
  http: HttpServer;
  engine: EngineClient | undefined;
  registry: DeviceRegistry;
  metrics: BridgeMetrics;
  lock: DataDirLock;
  logger: Logger;
}

/**
 * The phase and addresses are here before the parts: the HTTP server, one of them, is built with `readiness`. The
 * parts are given to `start` and `stop`.
 */
export class BridgeLifecycle {
  #phase: BridgePhase = "created";
  readonly #current: BridgeAddresses = {};
  #stopping: Promise<void> | undefined;
  /**
   * Settles once a start's HTTP listen is over (bound or failed). A stop closes the HTTP server only after it: closed
   * while the listen was binding, the server would bind after its close and keep the port. Set before the listen
   * begins, so a stop that begins the moment it does waits for it too.
   */
  #httpListenOver: Promise<void> = Promise.resolve();

  /** What /readyz reports. */
  readonly readiness = (): Readiness => ({
    ready: this.#phase === "ready",
    phase: this.#phase,
    listeners: { mqtt: this.#current.mqtt, mqtts: this.#current.mqtts, http: this.#current.http },
  });

  addresses(): BridgeAddresses {
    return { ...this.#current };
  }

  /** Starts every listener; resolves with their real addresses once the bridge is ready. */
  async start(parts: LifecycleParts): Promise<BridgeAddresses> {
    const { runtime, broker, http, engine, logger } = parts;
    if (this.#phase !== "created") {
      throw new BridgeError("BRIDGE_ERR_STOPPED", `the bridge cannot start when ${this.#phase}`);
    }
    this.#phase = "starting";
    // A stop requested while starting wins: no listener opens after it began.
    const stillStarting = () => {
      if (this.#phase !== "starting") {
        throw new BridgeError("BRIDGE_ERR_STOPPED", "the bridge was stopped while starting");
      }
    };
    try {
      await runtime.start();
      stillStarting();
      const listening = await broker.start();
      if (listening.tcp) this.#current.mqtt = listening.tcp;
      if (listening.tls) this.#current.mqtts = listening.tls;
      stillStarting();
      let listenOver = (): void => {};
      this.#httpListenOver = new Promise((resolve) => {
        listenOver = resolve;
      });
      try {
        this.#current.http = await http.listen();
      } finally {
        listenOver();
      }
      stillStarting();
    } catch (err) {
      // The stop closed the part this start was opening, which then fails with its own code (the broker's
      // BRIDGE_ERR_BROKER_CLOSED): the stop is what happened, and `agent-bridge start` exits 0 for it, not 1.
      if (this.#phase === "starting" || hasErrorCode(err, "BRIDGE_ERR_STOPPED")) throw err;
      throw new BridgeError("BRIDGE_ERR_STOPPED", "the bridge was stopped while starting", {}, { cause: err });
    }
    this.#phase = "ready";
    // Reported, not awaited: a slow engine must not delay devices (app/bridge/engine-health-at-start.ts).
    if (engine) logEngineHealthAtStart(engine, logger, () => this.#phase === "ready");
    return { ...this.#current };
  }

  /** Graceful stop; idempotent: every call gets the first one's promise. */
  stop(parts: LifecycleParts): Promise<void> {
    this.#stopping ??= this.#stopAll(parts);
    return this.#stopping;
  }

  async #stopAll({
    runtime,
    broker,
    sockets,
    http,
    engine,
    registry,
    metrics,
    lock,
    logger,
  }: LifecycleParts): Promise<void> {
    this.#phase = "stopping";
    // Upgrades to /mqtt and /agents are refused from here. The HTTP server stops listening in the first stage, with the
    // broker's listeners: no probe needs a 503 from /readyz first, since the devices' MQTT ports close at once too.
    http.stopAccepting();
    await runStopStages(
      [
        // Independent sockets: their close waits overlap, each cut at its grace, so all end by graces.closesMs and the
        // agents keep the rest of shutdown.timeoutMs (stop-graces.ts). One after the other they took the sum.
        [
          { name: "broker", run: () => broker.close() },
          { name: "websockets", run: () => sockets.close() },
          {
            name: "http",
            run: async () => {
              await this.#httpListenOver;
              await http.close();
            },
          },
        ],
        // Only once nothing delivers events to the agents or calls into them: the runtime refuses new events while it
        // drains, and a device's close (its agent's onClose) or an operator's call would be refused instead of run.
        [{ name: "runtime", run: () => runtime.shutdown() }],
        // An agent draining may still ask the engine; the registry and the lock go last.
        ...(engine ? [[{ name: "engine", run: () => engine.close() }]] : []),
        [{ name: "registry", run: () => registry.close() }],
        // The process metrics' event-loop delay monitor and GC observer would otherwise sample for as long as the
        // process lives, one pair per bridge it ever built.
        [{ name: "metrics", run: () => metrics.close() }],
        [{ name: "data-dir lock", run: () => lock.release() }],
      ],
      (step, err) => logger.error({ err, step }, "error while stopping"),
    );
    this.#phase = "stopped";
  }
}
