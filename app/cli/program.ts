/**
 * The `agent-bridge` command line (commander). Usage errors (unknown command or flag, missing argument) print a
 * clear message and exit 2; configuration errors exit 2; run-time failures exit 1.
 */
import { Command, CommanderError } from "commander";
import { registerBackupCommand } from "./backup.ts";
import { registerDevicesCommand } from "./devices.ts";
import { CliExit, EXIT_FAILURE, EXIT_USAGE } from "./exit.ts";
import { registerStartCommand } from "./start.ts";
import { type PASS_THROUGH_COMMANDS, registerToolCommands, runEngineSim, runFleetSim } from "./tools.ts";

/** Builds the program; `exitOverride` turns commander's own exits into `CommanderError`s that `runCli` maps. */
export function buildProgram(): Command {
  const program = new Command("agent-bridge")
    .description("Edge gateway: an MQTT broker where every device gets its own persistent agent")
    .version("0.1.0")
    .showHelpAfterError("(run agent-bridge --help for usage)")
    .showSuggestionAfterError(true)
    .exitOverride();
  registerStartCommand(program);
  registerDevicesCommand(program);
  registerBackupCommand(program);
  registerToolCommands(program);
  // Each command's usage error points at its own help: the top-level help lists neither a subcommand's arguments
  // nor its flags.
  for (const cmd of program.commands) {
    cmd.exitOverride().showHelpAfterError(`(run agent-bridge ${cmd.name()} --help for usage)`);
    for (const sub of cmd.commands) {
      sub.exitOverride().showHelpAfterError(`(run agent-bridge ${cmd.name()} ${sub.name()} --help for usage)`);
    }
  }
  return program;
}

/** Runs the CLI on `argv` (as in process.argv) and returns the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length <= 2) {
    program.outputHelp();
    return EXIT_USAGE;
  }
  try {
    // The simulators parse their own flags: everything after the command name goes to them untouched.
    const command = argv[2] as (typeof PASS_THROUGH_COMMANDS)[number];
    if (command === "engine-sim") return await runEngineSim(argv.slice(3));
    if (command === "sim") return await runFleetSim(argv.slice(3));
    await program.parseAsync([...argv]);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CliExit) return err.exitCode;
    if (err instanceof CommanderError) {
      // help and version "errors" are successful exits; every other commander error is bad usage.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILURE;
  }
}
