/**
 * The `DELETE /api/devices/:id` calls in progress, by id. A removal takes the registry record first and then waits
 * for the runtime to destroy the agent, which finishes only once the agent's running events have (agents/
 * cell-lifecycle.ts): events that reach the agent meanwhile run on the instance being destroyed, and its data goes
 * with it. A device provisioned under the same id in that wait would connect into that instance and lose what it
 * sent (acknowledged readings included) and its last-seen time, while its new record stays. So provisioning an id
 * waits for its removal to end, and removals of one id run one after the other.
 */
export class DeviceRemovals {
  readonly #inProgress = new Map<string, Promise<unknown>>();

  /** Runs `remove` for `id` once every earlier removal of `id` has ended. */
  async run<T>(id: string, remove: () => Promise<T>): Promise<T> {
    const current = this.settled(id).then(remove);
    this.#inProgress.set(id, current);
    try {
      return await current;
    } finally {
      if (this.#inProgress.get(id) === current) this.#inProgress.delete(id);
    }
  }

  /** Resolves once no removal of `id` is in progress (at once when none is), whatever its outcome. */
  async settled(id: string): Promise<void> {
    for (let pending = this.#inProgress.get(id); pending !== undefined; pending = this.#inProgress.get(id)) {
      await pending.catch(() => {});
      // A removal that started while this one ran is waited for too.
      if (this.#inProgress.get(id) === pending) return;
    }
  }
}
