/**
 * `agent-bridge engine-sim`: runs the simulator in the foreground until SIGINT/SIGTERM.
 * The app's CLI wires `runEngineSimCli(process.argv.slice(3))` (arguments after the subcommand).
 */
import { Command, InvalidArgumentError } from "commander";
import { BridgeError } from "../../errors/index.ts";
import { type EngineSimulator, startEngineSimulator } from "./simulator.ts";

/** How the simulator's options name a field in their errors (options.ts): `engineSim.port`. */
const OPTION_FIELD_PREFIX = "engineSim.";

function number(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new InvalidArgumentError("not a number");
  return parsed;
}

/**
 * An option the simulator refused, named by the flag the user typed (`--port must be ... (got 99999)`) instead of the
 * option's path (`engineSim.port`), which appears nowhere on this command line. Any other error is returned as it is.
 */
function namedByFlag(err: unknown, program: Command): unknown {
  if (!(err instanceof BridgeError) || err.code !== "BRIDGE_ERR_CONFIG") return err;
  const field = err.details.field;
  if (typeof field !== "string" || !field.startsWith(OPTION_FIELD_PREFIX)) return err;
  const name = field.slice(OPTION_FIELD_PREFIX.length);
  const option = program.options.find((o) => o.attributeName() === name);
  if (option?.long === undefined) return err;
  const rule = err.message.startsWith(`${field} `) ? err.message.slice(field.length + 1) : err.message;
  const message = `${option.long} ${rule} (got ${String(program.getOptionValue(name))})`;
  return new BridgeError("BRIDGE_ERR_CONFIG", message, { field: option.long }, { cause: err });
}

/** Parses `argv` (without the node and script names), starts the simulator and prints its URL. */
export async function runEngineSimCli(
  argv: string[],
  io: { log: (line: string) => void; handleSignals: boolean } = { log: console.log, handleSignals: true },
): Promise<EngineSimulator> {
  const program = new Command("engine-sim")
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
      minOutputTokens: flags.minOutputTokens,
      maxOutputTokens: flags.maxOutputTokens,
      sseLineEnding: flags.sseCrlf ? "\r\n" : "\n",
    });
  } catch (err) {
    throw namedByFlag(err, program);
  }
  io.log(`engine simulator serving ${sim.model} at ${sim.url} (OpenAI API under ${sim.url}/v1)`);
  if (io.handleSignals) {
    const stop = () => void sim.close().then(() => process.exit(0));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  }
  return sim;
}
