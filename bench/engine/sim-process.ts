/**
 * Runs the engine simulator in its own process for the benchmark, so the benchmark process measures only
 * the client side's CPU. Prints one JSON line `{"url": ...}` when ready; exits on SIGTERM or stdin close.
 * Arguments: <timeScale> <answerTokens>. Every answer's natural length is `answerTokens` (min = max output tokens),
 * so a benchmark that asks for at most that many per request (`max_tokens`) gets exactly what it asked for.
 */
import { startEngineSimulator } from "../../engine-client/sim/index.ts";

const timeScale = Number(process.argv[2] ?? "1");
const answerTokens = Number(process.argv[3] ?? "64");
const sim = await startEngineSimulator({
  timeScale,
  minOutputTokens: answerTokens,
  maxOutputTokens: answerTokens,
  maxWaiting: 100_000,
  maxNumSeqs: 256,
});
process.stdout.write(`${JSON.stringify({ url: sim.url })}\n`);
const stop = () => void sim.close().then(() => process.exit(0));
process.once("SIGTERM", stop);
process.stdin.on("close", stop);
process.stdin.resume();
