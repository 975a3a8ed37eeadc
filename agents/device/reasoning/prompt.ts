/**
 * Prompt layout, ordered for the engine's prefix cache: what never changes first (system prompt, device profile,
 * tools), then the finished conversation history (append-only), then this turn's question with the volatile device
 * context (shadow and recent telemetry) LAST, snapshotted once per turn so every tool round of a turn extends the
 * same prefix. Consecutive requests of one device therefore share everything up to the new question.
 */
import type { ChatMessage } from "../../engine.ts";
import type { DeviceProfile } from "../presence.ts";
import type { Shadow } from "../shadow-store.ts";
import type { TelemetryRow } from "../telemetry-store.ts";
import { valueToJson } from "../values.ts";
import type { ConversationEntry } from "./conversation-store.ts";
import { toChatMessages } from "./conversation-store.ts";

/** The stable first message: system prompt and device profile. No clock, no readings: those would break the prefix. */
export function systemMessage(
  systemPrompt: string,
  agent: { id: string; className: string },
  profile: DeviceProfile,
): string {
  const caps = profile.caps;
  return [
    systemPrompt,
    "",
    "Device profile:",
    `- device id: ${agent.id}`,
    `- agent class: ${agent.className}`,
    `- firmware: ${profile.firmware ?? "unknown"}`,
    `- codec: ${profile.codec ?? "unknown"}`,
    `- capabilities: sync=${caps.sync} stream=${caps.stream} maxFrame=${caps.maxFrame ?? "unknown"}`,
  ].join("\n");
}

/** The volatile context, snapshotted when a turn starts. */
export function deviceContext(
  now: number,
  online: boolean,
  shadow: Shadow,
  telemetry: readonly TelemetryRow[],
): string {
  const lines = [
    `Device context at ${new Date(now).toISOString()} (${online ? "online" : "offline"}):`,
    `Reported state (v${shadow.reported.version}): ${valueToJson(shadow.reported.state)}`,
    `Desired state (v${shadow.desired.version}): ${valueToJson(shadow.desired.state)}`,
    `Pending delta: ${valueToJson(shadow.delta)}`,
  ];
  if (telemetry.length === 0) {
    lines.push("Recent telemetry: none");
  } else {
    lines.push("Recent telemetry (newest first):");
    for (const row of telemetry) {
      lines.push(
        `- ${new Date(row.ts).toISOString()} ${row.metric}=${valueToJson(row.value)}${row.unit ? ` ${row.unit}` : ""}`,
      );
    }
  }
  return lines.join("\n");
}

/** The question as the model sees it in the turn that asks it: the question, then the context. */
export function questionWithContext(question: string, context: string): string {
  return `${question}\n\n---\n${context}`;
}

/**
 * Assembles the engine messages: system, history of finished turns (questions without their old context), then the
 * current turn, whose first user message carries the context snapshot.
 */
export function buildMessages(input: {
  system: string;
  history: readonly ConversationEntry[];
  turn: readonly ConversationEntry[];
  context: string;
}): ChatMessage[] {
  const current = toChatMessages(input.turn);
  const firstUser = current.findIndex((m) => m.role === "user");
  if (firstUser >= 0) {
    const m = current[firstUser];
    if (m.role === "user")
      current[firstUser] = { role: "user", content: questionWithContext(m.content, input.context) };
  }
  return [{ role: "system", content: input.system }, ...toChatMessages(input.history), ...current];
}
