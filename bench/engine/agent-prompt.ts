/**
 * The direct baseline of the bridge benchmark must ask the engine for the same work the bridge does, so it sends
 * the prompt a DeviceAgent builds for a device without hello, history or telemetry (the bridge under test runs
 * with `maxHistoryTurns` 0): the device tools, the system prompt with the device profile, then the question with
 * the device context. Built with the agent's own prompt functions, so the two stay the same length.
 */
import { DEFAULT_SYSTEM_PROMPT, DEVICE_TOOLS } from "../../agents/device/index.ts";
import {
  deviceContext,
  questionWithContext,
  shadowContext,
  systemMessage,
} from "../../agents/device/reasoning/prompt.ts";
import type { BenchPrompt } from "./modes.ts";

const EMPTY_SHADOW = { reported: { version: 0, state: {} }, desired: { version: 0, state: {} }, delta: {} };

/** The prompt of `question` as a fresh DeviceAgent `agentId` would send it at time `nowMs`. */
export function agentShapedPrompt(agentId: string, question: string, nowMs: number): BenchPrompt {
  const profile = {
    firmware: null,
    codec: null,
    caps: { sync: true, stream: true, maxFrame: null },
    helloAt: null,
  };
  return {
    agentId,
    system: systemMessage(DEFAULT_SYSTEM_PROMPT, { id: agentId, className: "DeviceAgent" }, profile),
    user: questionWithContext(question, deviceContext(nowMs, true, shadowContext(EMPTY_SHADOW), [])),
    tools: DEVICE_TOOLS,
  };
}
