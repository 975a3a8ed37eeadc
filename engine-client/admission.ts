/**
 * Admission: which replica a request runs on, and when. Each replica takes at most `maxInFlightPerReplica`
 * requests; the rest wait in a fair queue. A request prefers its agent's rendezvous replica (prefix-cache
 * affinity) and spills to the next one in its rendezvous order only when the preferred one is full, so the
 * client stays work-conserving while keeping affinity whenever there is room.
 */
import { rendezvousOrder } from "./affinity.ts";
import type { Clock } from "./clock.ts";
import { ENGINE_ERROR_CODES, engineError } from "./errors.ts";
import { FairQueue } from "./fair-queue.ts";
import { type EngineObserver, notify } from "./observer.ts";
import type { Replica } from "./replica.ts";
import type { AbortListener, AbortSource } from "./request-context.ts";

/** The replicas a first attempt avoids: none. */
const NO_REPLICAS: ReadonlySet<Replica> = new Set();

interface Waiter extends AbortListener {
  agentId: string;
  priority: number;
  avoid: ReadonlySet<Replica>;
  resolve(replica: Replica): void;
  reject(err: unknown): void;
}

/** What admission needs of the client's options. */
export interface AdmissionOptions {
  maxQueued: number;
  priorityAgingMs: number;
  observer: EngineObserver;
  clock: Clock;
}

export class Admission {
  readonly #queue: FairQueue<Waiter>;
  private readonly maxQueued: number;
  private readonly observer: EngineObserver;

  constructor(
    private readonly replicas: readonly Replica[],
    options: AdmissionOptions,
  ) {
    this.maxQueued = options.maxQueued;
    this.observer = options.observer;
    // Waiting time is read from the client's clock, like deadlines, so tests drive aging with a manual clock.
    this.#queue = new FairQueue({ priorityAgingMs: options.priorityAgingMs, clock: options.clock });
  }

  get queued(): number {
    return this.#queue.size;
  }

  /**
   * A replica whose slot is now held by the caller (give it back with `release`): at once when one has room and
   * nobody waits, else a promise. The promise rejects with OVERLOADED when the queue is full, UNAVAILABLE when no
   * replica is in rotation, or the request's abort reason. `avoid` holds replicas that already failed this request:
   * they are used only when nothing else has room.
   */
  acquire(
    agentId: string,
    priority: number,
    request: AbortSource,
    avoid: ReadonlySet<Replica>,
  ): Replica | Promise<Replica> {
    if (request.aborted) return Promise.reject(request.reason);
    if (!this.replicas.some((r) => r.state === "healthy")) {
      return Promise.reject(
        engineError(ENGINE_ERROR_CODES.unavailable, "every engine replica is cooling down after failures", {
          replicas: this.replicas.length,
        }),
      );
    }
    const now = this.admitNow(agentId, avoid);
    if (now !== undefined) {
      this.reportInFlight(now);
      return now;
    }
    if (this.#queue.size >= this.maxQueued) {
      return Promise.reject(
        engineError(ENGINE_ERROR_CODES.overloaded, `engine request queue is full (${this.maxQueued} waiting)`, {
          maxQueued: this.maxQueued,
        }),
      );
    }
    return new Promise<Replica>((resolve, reject) => {
      const waiter: Waiter = {
        agentId,
        priority,
        avoid,
        resolve: (replica) => {
          request.unlisten(waiter);
          resolve(replica);
        },
        reject: (err) => {
          request.unlisten(waiter);
          reject(err);
        },
        onAbort: (reason) => {
          if (this.#queue.remove(agentId, priority, waiter)) {
            notify(this.observer, "onQueueDepth", { depth: this.#queue.size });
            reject(reason);
          }
        },
      };
      request.listen(waiter);
      this.#queue.push(agentId, priority, waiter);
      notify(this.observer, "onQueueDepth", { depth: this.#queue.size });
    });
  }

  /**
   * A replica whose slot is now held by the caller, when one has room and nobody waits; undefined otherwise, and the
   * request must go through `acquire` (which queues it, or says why it cannot run). Never waits and makes no promise:
   * the common call is admitted and sent in its caller's turn. A request never passes one that waits, even at a
   * moment a slot is free before the waiter is let in (an observer told of the release starting a call): fairness.
   * The caller tells the observer of the slot (`reportInFlight`): a streamed call sent at once does so only after its
   * request was written.
   */
  admitNow(agentId: string, avoid: ReadonlySet<Replica> = NO_REPLICAS): Replica | undefined {
    if (this.#queue.size !== 0) return undefined;
    const replica = this.#choose(agentId, avoid);
    if (replica !== undefined) replica.inFlight++;
    return replica;
  }

  /** Tells the observer how many requests `replica` has in flight now. */
  reportInFlight(replica: Replica): void {
    notify(this.observer, "onInFlight", { replica: replica.key, inFlight: replica.inFlight });
  }

  /** Gives a slot back and lets the next waiter in. */
  release(replica: Replica): void {
    replica.inFlight--;
    this.reportInFlight(replica);
    this.pump();
  }

  /** Called when a replica changes state: lets waiters in, or fails them all when no replica is left. */
  pump(): void {
    if (this.#queue.size > 0 && !this.replicas.some((r) => r.state === "healthy")) {
      this.rejectAll(
        engineError(ENGINE_ERROR_CODES.unavailable, "every engine replica is cooling down after failures", {
          replicas: this.replicas.length,
        }),
      );
      return;
    }
    while (this.#queue.size > 0 && this.replicas.some((r) => r.hasCapacity)) {
      const waiter = this.#queue.shift()!;
      const replica = this.#choose(waiter.agentId, waiter.avoid)!;
      this.#take(replica);
      waiter.resolve(replica);
    }
    notify(this.observer, "onQueueDepth", { depth: this.#queue.size });
  }

  rejectAll(err: unknown): void {
    for (const waiter of this.#queue.drain()) waiter.reject(err);
    notify(this.observer, "onQueueDepth", { depth: 0 });
  }

  #take(replica: Replica): void {
    replica.inFlight++;
    this.reportInFlight(replica);
  }

  /** The first replica with room in the agent's rendezvous order, replicas that failed this request last. */
  #choose(agentId: string, avoid: ReadonlySet<Replica>): Replica | undefined {
    // One replica (the usual edge gateway): no order to compute, no arrays to build per request.
    if (this.replicas.length === 1) {
      const only = this.replicas[0];
      return only.hasCapacity ? only : undefined;
    }
    const ordered = rendezvousOrder(
      agentId,
      this.replicas.filter((r) => r.state === "healthy"),
    );
    const preferred =
      avoid.size === 0 ? ordered : ordered.filter((r) => !avoid.has(r)).concat(ordered.filter((r) => avoid.has(r)));
    return preferred.find((r) => r.hasCapacity);
  }
}
