/**
 * The system message a round's prompt starts with: the system prompt and the device profile (prompt.ts
 * `systemMessage`). A turn's first round renders it as it is then; its later rounds send exactly that one again (kept
 * with the turn, Turn.systemMessage), not the profile as it is by then: a hello that changed the firmware, codec or
 * capabilities while the turn waited for a tool or an operator would change the first message of the prompt, so the
 * engine would recompute the whole prompt, and the model would be asked to go on from a tool call it made for another
 * device profile. The next question renders the current one.
 */
import { systemMessage } from "./prompt.ts";
import type { Reasoner } from "./reasoner.ts";
import type { Turn } from "./turn.ts";

/** The system message a new turn's first round sends: the configured system prompt and the current profile. */
export function currentSystemMessage(reasoner: Reasoner): string {
  const { core } = reasoner;
  return systemMessage(
    core.options.systemPrompt,
    { id: core.ports.id, className: core.ports.className },
    core.presence.profile(),
  );
}

/**
 * The system message a later round of `turn` sends: the one its first round sent. A turn stored before it was kept
 * (schema migration 11) renders the current one, as it always did.
 */
export function systemMessageOfTurn(reasoner: Reasoner, turn: Turn): string {
  return turn.systemMessage ?? currentSystemMessage(reasoner);
}
