/**
 * Test harness for DeviceAgent suites: the real runtime on a temp dataDir, a fake clock that tests advance, and an
 * in-test transport per connection that records every frame it is handed.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import pino, { type Logger } from "pino";
import type { CodecName, DownChannel, DownFrames, DownMessage, UpMessage } from "../../codecs/frames.ts";
import type { AgentClass } from "../../agents/agent.ts";
import type { ReasoningEngine } from "../../agents/engine.ts";
import type { ConnectionKind, ConnectionTransport, EventResult, ProtocolMessage } from "../../agents/host.ts";
import { createRuntime } from "../../agents/runtime.ts";
import type { AgentRuntime, AgentWiring } from "../../agents/types.ts";
import { DeviceAgent } from "../../agents/device/index.ts";
import { createEngineClient } from "../../engine-client/index.ts";
import type { EngineClient } from "../../engine-client/index.ts";
import { startEngineSimulator } from "../../engine-client/sim/index.ts";
import type { EngineSimulator } from "../../engine-client/sim/index.ts";
import { ManualClock, settle } from "../support/manual-clock.ts";

/** Lets queued events and their commits run (the shared helper, re-exported for the device suites). */
export { settle };

/** Waits (real time) until `check` returns a value other than undefined/false. */
export async function waitFor<T>(check: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export interface SentFrame {
  message: DownMessage;
  qos: 0 | 1;
}

/** One connection's recording transport. */
export class RecordingDevice {
  readonly sent: SentFrame[] = [];
  readonly protocol: ProtocolMessage[] = [];
  closedWith: string | null = null;
  readonly transport: ConnectionTransport = {
    send: (message, options) => {
      this.sent.push({ message, qos: options.qos });
    },
    sendProtocol: (message) => {
      this.protocol.push(message);
    },
    close: (reason) => {
      this.closedWith = reason;
    },
  };

  constructor(
    readonly agentId: string,
    readonly connectionId: string,
    readonly codec: CodecName,
    readonly kind: ConnectionKind,
  ) {}

  /** Frames of one down channel, in order. */
  frames<C extends DownChannel>(channel: C): DownFrames[C][] {
    return this.sent.filter((s) => s.message.channel === channel).map((s) => s.message.frame as DownFrames[C]);
  }

  clear(): void {
    this.sent.length = 0;
    this.protocol.length = 0;
  }
}

export interface HarnessOptions {
  agentClass?: AgentClass;
  engine?: ReasoningEngine;
  agentConfig?: Record<string, Record<string, unknown>>;
  agentWiring?: Record<string, AgentWiring>;
  start?: number;
  idleTimeoutMs?: number;
  /** Where the runtime and its agents log; silent unless given. */
  logger?: Logger;
}

/** The runtime under test, restartable on the same dataDir. */
export class DeviceHarness {
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "device-agent-"));
  readonly clock: ManualClock;
  runtime: AgentRuntime;
  #n = 0;
  /**
   * The seeded random source's state, kept across `restart`: a restarted bridge draws new numbers, as a real one does,
   * where starting over would repeat the ids of schedules still stored (a UNIQUE violation on the next one set).
   */
  #seed = 42;
  /** runtime.start() arms alarms; every helper waits for it. */
  #ready: Promise<void>;

  constructor(readonly options: HarnessOptions = {}) {
    this.clock = new ManualClock(options.start ?? Date.UTC(2026, 0, 15, 12, 0, 0));
    this.runtime = this.#create();
    this.#ready = this.runtime.start();
  }

  #create(): AgentRuntime {
    return createRuntime({
      dataDir: this.dataDir,
      defaultAgentClass: this.options.agentClass ?? DeviceAgent,
      clock: this.clock,
      random: () => {
        this.#seed = (this.#seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return this.#seed / 2 ** 31;
      },
      engine: this.options.engine,
      logger: this.options.logger ?? pino({ level: "silent" }),
      agentConfig: this.options.agentConfig,
      agentWiring: this.options.agentWiring,
      idleTimeoutMs: this.options.idleTimeoutMs,
    });
  }

  /** Opens a connection (an MQTT session unless `kind` says otherwise) and waits for its open event. */
  async open(agentId: string, codec: CodecName = "cbor", kind: ConnectionKind = "mqtt"): Promise<RecordingDevice> {
    await this.#ready;
    const device = new RecordingDevice(agentId, `conn-${++this.#n}`, codec, kind);
    const result = await this.runtime.open(agentId, {
      id: device.connectionId,
      kind,
      codec,
      transport: device.transport,
    });
    if (result.status !== "committed") throw new Error(`open failed: ${result.message}`);
    return device;
  }

  /** Delivers an up frame and waits until it committed. */
  async send(device: RecordingDevice, message: UpMessage): Promise<EventResult> {
    const outcome = this.runtime.deliver(device.agentId, device.connectionId, message);
    if (!outcome.accepted) throw new Error("mailbox full");
    return outcome.done;
  }

  close(device: RecordingDevice, reason: "disconnect" | "will" | "takeover" = "disconnect"): Promise<EventResult> {
    return this.runtime.close(device.agentId, device.connectionId, reason);
  }

  /** Calls a public agent method like the operator API does, and unwraps the value. */
  async call<T>(agentId: string, method: string, ...args: unknown[]): Promise<T> {
    await this.#ready;
    const result = await this.runtime.call(agentId, method, args as never);
    if (!result.ok) throw new Error(`${method} failed: ${result.code} ${result.message}`);
    return result.value as T;
  }

  /**
   * Shuts the runtime down and starts a new one on the same data (a bridge restart). `whileStopped` runs in between,
   * when no agent holds its database (they are opened with an exclusive lock): to make a file look like an older
   * version wrote it.
   */
  async restart(whileStopped?: () => void): Promise<void> {
    await this.runtime.shutdown();
    whileStopped?.();
    this.runtime = this.#create();
    this.#ready = this.runtime.start();
    await this.#ready;
  }

  async dispose(): Promise<void> {
    await this.#ready;
    await this.runtime.shutdown();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** The engine simulator, a client pointed at it, and the harnesses a test file started (disposed first in after()). */
export interface SimulatedEngine {
  readonly sim: EngineSimulator;
  readonly engine: EngineClient;
  readonly harnesses: DeviceHarness[];
}

/**
 * Registers before()/after() hooks in the calling test file: starts the engine simulator (timeScale 0) and a client
 * for it, then disposes every harness pushed to `harnesses` before closing the client and the simulator.
 */
export function useSimulatedEngine(): SimulatedEngine {
  let sim: EngineSimulator | undefined;
  let engine: EngineClient | undefined;
  const harnesses: DeviceHarness[] = [];
  before(async () => {
    sim = await startEngineSimulator({ timeScale: 0 });
    engine = createEngineClient({ urls: [sim.url] });
  });
  after(async () => {
    for (const h of harnesses) await h.dispose();
    await engine?.close();
    await sim?.close();
  });
  return {
    get sim(): EngineSimulator {
      if (sim === undefined) throw new Error("the engine simulator starts in before()");
      return sim;
    },
    get engine(): EngineClient {
      if (engine === undefined) throw new Error("the engine client starts in before()");
      return engine;
    },
    harnesses,
  };
}
