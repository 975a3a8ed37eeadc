/** The step-time model (see `StepModel` for the formula and where its defaults come from). */
import type { StepModel } from "./options.ts";

/** Modelled time of prefilling `uncachedTokens` prompt tokens in one step. */
export function prefillMs(model: StepModel, uncachedTokens: number): number {
  return Math.max(model.prefillMinMs, model.prefillPerTokenMs * uncachedTokens);
}

/** Modelled time of one decode step over sequences whose context lengths are `contexts`. */
export function decodeStepMs(model: StepModel, contexts: readonly number[]): number {
  let ms = model.decodeBaseMs;
  for (const context of contexts) ms += model.decodePerSeqMs + (model.decodePerSeqPerKTokensMs * context) / 1000;
  return ms;
}
