/**
 * Prompt layout, ordered for the engine's prefix cache: what never changes first (system prompt, device profile,
 * tools), then the finished turns of the history window exactly as they were sent (question with its context
 * snapshot, tool rounds, answer), then this turn's question with its context snapshot LAST. Each turn is rendered
 * by one function whether it is the current turn or history, so the next request repeats this one byte for byte
 * and only appends: the answer, the new question and what changed since (state, readings newer than the previous
 * snapshot). The volatile part stays small instead of resending the last N readings after every question.
 */
import type { ChatMessage } from "../../engine.ts";
import type { DeviceProfile } from "../presence.ts";
import type { Shadow } from "../shadow-store.ts";
import type { TelemetryRow } from "../telemetry-store.ts";
import { valueToJson } from "../values.ts";
import { type PromptMessage, toChatMessages } from "./conversation-store.ts";

/**
 * One turn as the prompt shows it: its messages (stored, or about to be: a question's request leaves before its row is
 * written) and the context snapshot taken when it began.
 */
export interface PromptTurn {
  context: string;
  messages: readonly PromptMessage[];
}

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
    // The device's own free text, quoted: written as it came, its newlines added lines to the system prompt.
    `- firmware: ${profile.firmware === null ? "unknown" : quotedOnOneLine(profile.firmware)}`,
    `- codec: ${profile.codec ?? "unknown"}`,
    `- capabilities: sync=${caps.sync} stream=${caps.stream} maxFrame=${caps.maxFrame ?? "unknown"}`,
  ].join("\n");
}

/** NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR end a line in Unicode text, but JSON writes them as they are. */
const UNICODE_LINE_BREAKS = /[\u0085\u2028\u2029]/g;

/** `text` as a JSON string with no line break of any kind in it. */
function quotedOnOneLine(text: string): string {
  return JSON.stringify(text).replace(
    UNICODE_LINE_BREAKS,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** The shadow's part of the device context: both documents with their versions, and the pending delta. */
export function shadowContext(shadow: Shadow): string {
  return [
    `Reported state (v${shadow.reported.version}): ${valueToJson(shadow.reported.state)}`,
    `Desired state (v${shadow.desired.version}): ${valueToJson(shadow.desired.state)}`,
    `Pending delta: ${valueToJson(shadow.delta)}`,
  ].join("\n");
}

/**
 * The volatile context, snapshotted when a turn starts. `shadowText`: the shadow as `shadowContext` renders it (the
 * reasoner keeps it while the shadow is unchanged). `sincePrevious`: `telemetry` holds only the readings stored after the
 * previous turn's snapshot (which is in the history), and the heading says so; else the latest readings.
 */
export function deviceContext(
  now: number,
  online: boolean,
  shadowText: string,
  telemetry: readonly TelemetryRow[],
  sincePrevious = false,
): string {
  const lines = [`Device context at ${new Date(now).toISOString()} (${online ? "online" : "offline"}):`, shadowText];
  const scope = sincePrevious ? "Telemetry since the previous question" : "Recent telemetry";
  if (telemetry.length === 0) {
    lines.push(`${scope}: none`);
  } else {
    lines.push(`${scope} (newest first):`);
    // Readings of one instant share a line: the timestamp is the longest part of a line and every token of the
    // volatile tail is computed afresh by the engine.
    let line = "";
    let lineTs: number | undefined;
    for (const row of telemetry) {
      const reading = `${row.metric}=${valueToJson(row.value)}${row.unit ? ` ${row.unit}` : ""}`;
      if (row.ts === lineTs) {
        line += `, ${reading}`;
        continue;
      }
      if (line !== "") lines.push(line);
      line = `- ${new Date(row.ts).toISOString()} ${reading}`;
      lineTs = row.ts;
    }
    lines.push(line);
  }
  return lines.join("\n");
}

/** The question as the model sees it, now and later in the history: the question, then its context. */
export function questionWithContext(question: string, context: string): string {
  return `${question}\n\n---\n${context}`;
}

/** A turn's engine messages: its first user message carries the turn's context snapshot. */
export function turnToMessages(turn: PromptTurn): ChatMessage[] {
  const messages = toChatMessages(turn.messages);
  const firstUser = messages.findIndex((m) => m.role === "user");
  if (firstUser >= 0) {
    const m = messages[firstUser];
    if (m.role === "user")
      messages[firstUser] = { role: "user", content: questionWithContext(m.content, turn.context) };
  }
  return messages;
}

/** Assembles the engine messages: system, the finished turns of the history window, then the current turn. */
export function buildMessages(input: {
  system: string;
  history: readonly PromptTurn[];
  turn: PromptTurn;
}): ChatMessage[] {
  return [
    { role: "system", content: input.system },
    ...input.history.flatMap(turnToMessages),
    ...turnToMessages(input.turn),
  ];
}
