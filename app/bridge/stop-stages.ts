/**
 * A stop as a list of stages. The steps of one stage run together (parts that close independent sockets wait out
 * their close graces at the same time, not one after the other); a stage starts once every step of the one before
 * settled, so a part that others still deliver to or call into closes only after they are done. A step that throws or
 * rejects is reported and the stop goes on: one part that fails to close must not keep the others open, nor the data
 * directory locked.
 */

/** One part's close. */
export interface StopStep {
  /** Names the part in the error report. */
  name: string;
  /** Closes the part; may return a promise, which the stage waits for. */
  run(): unknown;
}

/** Steps that may overlap. */
export type StopStage = readonly StopStep[];

/**
 * Runs `stages` in order, the steps of each together; `onError` hears of each step that failed.
 *
 * @example
 * await runStopStages(
 *   [[{ name: "broker", run: () => broker.close() }, { name: "http", run: () => http.close() }],
 *    [{ name: "runtime", run: () => runtime.shutdown() }]],
 *   (step, err) => logger.error({ err, step }, "error while stopping"),
 * );
 */
export async function runStopStages(
  stages: readonly StopStage[],
  onError: (step: string, err: unknown) => void,
): Promise<void> {
  for (const stage of stages) {
    await Promise.all(
      stage.map(async (step) => {
        try {
          await step.run();
        } catch (err) {
          onError(step.name, err);
        }
      }),
    );
  }
}
