/**
 * Stand-alone entry of the fleet simulator: `node --import tsx firmware-sim/main.ts --url mqtt://127.0.0.1:1883 ...`.
 */
import { runSimCli } from "./cli.ts";

process.exitCode = await runSimCli(process.argv.slice(2));
