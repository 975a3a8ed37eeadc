/**
 * Runs the engine simulator in its own process for the benchmark, so the benchmark process measures only
 * the client side's CPU. Prints one JSON line `{"url": ...}` when ready; exits on SIGTERM or stdin close.
 * Arguments: <timeScale> <outputTokens>.
 */
import { startEngineSimulator } from "../../engine-client/sim/index.ts";

const timeScale = Number(process.argv[2] ?? "1");
const outputTokens = Number(process.argv[3] ?? "64");
const sim = await startEngineSimulator({
  timeScale,
  minOutputTokens: outputTokens,
  maxOutputTokens: outputTokens,
  maxWaiting: 100_000,
  maxNumSeqs: 256,
});
process.stdout.write(`${JSON.stringify({ url: sim.url })}\n`);
const stop = () => void sim.close().then(() => process.exit(0));
process.once("SIGTERM", stop);
process.stdin.on("close", stop);
process.stdin.resume();
