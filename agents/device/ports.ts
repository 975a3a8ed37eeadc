/**
 * What the DeviceAgent's parts need from the agent they live in. The agent class builds this from its base-class
 * methods; the stores and handlers see only this narrow surface (and tests can fake it).
 */
import type { Logger } from "pino";
import type { Value } from "../../codecs/frames.ts";
import type { ReasoningEngine } from "../engine.ts";
import type { Connection, FleetDirectory, Schedule, TaskContext, TaskOptions } from "../types.ts";
import type { CommandState } from "./command-outbox.ts";
import type { SqlTag } from "./sql.ts";

export interface DevicePorts {
  readonly id: string;
  /** The agent's class name (for the prompt profile and logs). */
  readonly className: string;
  readonly sql: SqlTag;
  now(): number;
  random(): number;
  readonly logger: Logger;
  readonly directory: FleetDirectory;
  engine(): ReasoningEngine | undefined;
  connections(): Connection[];
  connection(id: string): Connection | undefined;
  /** Runs agent method `method(payload)` after `delaySeconds`. */
  scheduleIn(delaySeconds: number, method: string, payload: Value): Schedule;
  cancelSchedule(id: string): boolean;
  startTask(kind: string, input: Value, run: (task: TaskContext) => Promise<Value>, options?: TaskOptions): string;
  cancelTask(id: string): boolean;
  /** Runs `fn` in a savepoint: its writes roll back alone when it throws (Agent.transaction). */
  transaction<T>(fn: () => T): T;
  /** Tells the agent's onError (with `event`) of a failure a savepoint rolled back while its event went on. */
  reportError(err: unknown, event: string): void;
  /** Whether task `id` has an outcome to come (running, or its report waiting for its hook): Agent.hasTask. */
  hasTask(id: string): boolean;
  /** Told of each command state change the outbox makes (the app's metrics); optional, must not throw. */
  commandTransition?(commandId: string, from: CommandState | null, to: CommandState): void;
  /** A device session got its pending frames (the first message of a session): work held for the device resumes. */
  sessionGreeted?(): void;
}
