/**
 * `agent-bridge engine-sim`: runs the simulator in the foreground until SIGINT/SIGTERM.
 * The app's CLI wires `runEngineSimCli(process.argv.slice(3))` (arguments after the subcommand).
 */
import { Command, InvalidArgumentError } from "commander";
import { type FlagNaming, namedByFlag } from "../../errors/index.ts";
import { type EngineSimulator, startEngineSimulator } from "./simulator.ts";

/** How the simulator's options name a field in their errors (options.ts): `engineSim.port`. */
const ENGINE_SIM_FLAGS: FlagNaming = { code: "BRIDGE_ERR_CONFIG", fieldPrefix: "engineSim.", withValue: true };

function number(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new InvalidArgumentError("not a number");
  return parsed;
}

/** Parses `argv` (without the node and script names), starts the simulator and prints its URL. */
export async function runEngineSimCli(
  argv: string[],
  io: { log: (line: string) => void; handleSignals: boolean } = { log: console.log, handleSignals: true },
): Promise<EngineSimulator> {
  // Named as a user types it: this runs as `agent-bridge engine-sim` (app/cli/tools.ts passes the arguments through).
  const program = new Command("agent-bridge engine-sim")
    .description("Run the OpenAI-compatible engine simulator (vLLM-shaped) for tests, demos and benchmarks")
    .option("--host <host>", "interface to bind", "127.0.0.1")
    .option("--port <port>", "TCP port (0 picks one)", number, 8000)
    .option("--model <id>", "served model id", "sim-llama-3.1-8b")
    .option("--max-model-len <tokens>", "context window", number, 8192)
    .option("--api-key <key>", "require this bearer token on /v1/* (or ENGINE_SIM_API_KEY)")
    .option("--time-scale <factor>", "wall time per modelled ms (0.01 = 100x faster, 0 = no waiting)", number, 1)
    .option("--max-num-seqs <n>", "sequences per batch", number, 256)
    .option("--max-num-batched-tokens <n>", "prefill tokens per step", number, 8192)
    .option("--max-waiting <n>", "waiting requests before 503", number, 1024)
    .option("--prefix-cache-blocks <n>", "prefix cache capacity in 16-token blocks", number, 8192)
    .option("--kv-cache-blocks <n>", "KV cache capacity in 16-token blocks", number, 55_000)
    .option("--min-output-tokens <n>", "shortest natural answer", number, 8)
    .option("--max-output-tokens <n>", "longest natural answer", number, 64)
    .option("--sse-crlf", "end SSE lines with CRLF")
    .exitOverride();
  program.parse(argv, { from: "user" });
  const flags = program.opts<{
    host: string;
    port: number;
    model: string;
    maxModelLen: number;
    apiKey?: string;
    timeScale: number;
    maxNumSeqs: number;
    maxNumBatchedTokens: number;
    maxWaiting: number;
    prefixCacheBlocks: number;
    kvCacheBlocks: number;
    minOutputTokens: number;
    maxOutputTokens: number;
    sseCrlf?: boolean;
  }>();
  let sim: EngineSimulator;
  try {
    sim = await startEngineSimulator({
      host: flags.host,
      port: flags.port,
      model: flags.model,
      maxModelLen: flags.maxModelLen,
      apiKey: flags.apiKey ?? process.env.ENGINE_SIM_API_KEY,
      timeScale: flags.timeScale,
      maxNumSeqs: flags.maxNumSeqs,
      maxNumBatchedTokens: flags.maxNumBatchedTokens,
      maxWaiting: flags.maxWaiting,
      prefixCacheBlocks: flags.prefixCacheBlocks,
      kvCacheBlocks: flags.kvCacheBlocks,
      minOutputTokens: flags.minOutputTokens,
      maxOutputTokens: flags.maxOutputTokens,
      sseLineEnding: flags.sseCrlf ? "\r\n" : "\n",
    });
  } catch (err) {
    // Named by the flag typed (`--port must be ... (got 99999)`), not the option's path, which is on no command line.
    throw namedByFlag(err, program, ENGINE_SIM_FLAGS);
  }
  io.log(`engine simulator serving ${sim.model} at ${sim.url} (OpenAI API under ${sim.url}/v1)`);
  if (io.handleSignals) {
    const stop = () => void sim.close().then(() => process.exit(0));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  }
  return sim;
}
