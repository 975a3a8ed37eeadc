/**
 * A fixed multi-turn device workload for the prefix-cache target: one device asks a run of questions and, between
 * two questions, sends fresh telemetry and a reported-state patch, as a thermostat on a shelf would. The same steps
 * drive the DeviceAgent test (tests/agents/device-prefix-cache.test.ts, in-process) and the bridge benchmark (over
 * MQTT), so both measure the same prompt layout. Deterministic: no clock, no randomness.
 */
import type { ReportedStateFrame, TelemetryFrame } from "../../codecs/frames.ts";

/** One step of the workload: what the device sends before it asks, then the question. */
export interface MultiTurnStep {
  telemetry: TelemetryFrame[];
  /** Reported-state patch (its `v` is the reported version it is based on: the step index). */
  state: ReportedStateFrame;
  question: string;
}

const QUESTIONS = [
  "Is the room warm enough right now?",
  "How has the temperature moved since my last question?",
  "Is the humidity in a healthy range?",
  "Should I open a window because of the CO2 level?",
  "What mode am I in and is it the right one?",
  "Summarise the last readings in one line.",
  "Is the fan speed sensible for this temperature?",
  "Did the setpoint change recently?",
  "Is anything unusual in the recent readings?",
  "Would eco mode save energy now?",
];

/** Rounds to one decimal without float noise in the text. */
function tenth(n: number): number {
  return Math.round(n * 10) / 10;
}

/**
 * `turns` steps; before each question the device sends `readingsPerTurn` telemetry frames (temperature, humidity,
 * CO2) and a state patch (mode, setpoint, fan) that changes every step.
 */
export function multiTurnWorkload(turns = 24, readingsPerTurn = 3): MultiTurnStep[] {
  const steps: MultiTurnStep[] = [];
  for (let i = 0; i < turns; i++) {
    const telemetry: TelemetryFrame[] = [];
    for (let j = 0; j < readingsPerTurn; j++) {
      const k = i * readingsPerTurn + j;
      telemetry.push({
        r: {
          temp: tenth(20 + 3 * Math.sin(k / 5)),
          hum: tenth(45 + 10 * Math.cos(k / 7)),
          co2: 600 + ((k * 37) % 400),
        },
      });
    }
    steps.push({
      telemetry,
      state: { v: i, s: { mode: i % 6 < 3 ? "comfort" : "eco", setpoint: 19 + (i % 4), fan: i % 3 } },
      question: `${QUESTIONS[i % QUESTIONS.length]} (question ${i + 1})`,
    });
  }
  return steps;
}

/** Prompt and prefix-cached tokens of one answered question, as the final reason frame's `u` reports them. */
export interface TurnUsage {
  promptTokens: number;
  cachedTokens: number;
}

/** cached / prompt over all turns after the first (the first always starts on a cold cache). */
export function warmHitRate(usages: readonly TurnUsage[]): number {
  const warm = usages.slice(1);
  const prompt = warm.reduce((n, u) => n + u.promptTokens, 0);
  const cached = warm.reduce((n, u) => n + u.cachedTokens, 0);
  return prompt === 0 ? 0 : cached / prompt;
}

/** cached / prompt over all turns, the first included. */
export function overallHitRate(usages: readonly TurnUsage[]): number {
  const prompt = usages.reduce((n, u) => n + u.promptTokens, 0);
  const cached = usages.reduce((n, u) => n + u.cachedTokens, 0);
  return prompt === 0 ? 0 : cached / prompt;
}
