/**
 * MQTT keepalive for one connection, on the fleet's shared scheduler: a PINGREQ every three quarters of the
 * keepalive, and a connection whose previous PINGREQ got no PINGRESP by the next one is declared dead
 * (the broker would drop it after 1.5 keepalives anyway [MQTT-3.1.2-24]).
 */
import type { ScheduledTask, TaskScheduler } from "../scheduler.ts";

export class Keepalive {
  #task: ScheduledTask | undefined;
  #outstanding = false;

  constructor(
    private readonly scheduler: TaskScheduler,
    private readonly keepaliveSec: number,
    private readonly ping: () => void,
    private readonly dead: () => void,
  ) {}

  /** Starts pinging (keepalive 0 means never). */
  start(): void {
    this.stop();
    if (this.keepaliveSec > 0) this.#schedule();
  }

  #schedule(): void {
    this.#task = this.scheduler.after(this.keepaliveSec * 750, () => {
      if (this.#outstanding) {
        this.dead();
        return;
      }
      this.#outstanding = true;
      this.ping();
      this.#schedule();
    });
  }

  /** A PINGRESP arrived. */
  pong(): void {
    this.#outstanding = false;
  }

  stop(): void {
    this.scheduler.cancel(this.#task);
    this.#task = undefined;
    this.#outstanding = false;
  }
}
