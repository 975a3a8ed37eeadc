/**
 * Entry point of the `agent-bridge` command (loaded by bin/agent-bridge.js through tsx).
 * See docs/cli.md for every command.
 */
import { runCli } from "./cli/program.ts";

const code = await runCli(process.argv);
// Exit explicitly once stdout has drained: a stopped bridge must not linger on a forgotten timer or socket.
process.stdout.write("", () => process.exit(code));
