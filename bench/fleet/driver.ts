/**
 * The load-generator process (`node --import tsx bench/fleet/driver.ts`): reads one command per stdin line, answers
 * one JSON line on stdout. Started and stopped by the benchmark; exits when stdin closes, so it never outlives it.
 */
import readline from "node:readline";
import type { DriverCommand, DriverReply } from "./driver-protocol.ts";
import { LoadFleet } from "./load-fleet.ts";

const fleet = new LoadFleet();
const lines = readline.createInterface({ input: process.stdin });

function reply(message: DriverReply): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function handle(command: DriverCommand): Promise<DriverReply> {
  switch (command.op) {
    case "connect":
      return fleet.connect(command);
    case "run":
      return fleet.run(command);
    case "close":
      await fleet.close();
      return { op: "close" };
  }
}

// Commands arrive strictly in turn (the parent waits for each reply), so a serial chain keeps them ordered.
let chain = Promise.resolve();
lines.on("line", (line) => {
  chain = chain.then(async () => {
    try {
      reply(await handle(JSON.parse(line) as DriverCommand));
    } catch (err) {
      reply({ op: "error", message: err instanceof Error ? err.message : String(err) });
    }
  });
});
lines.on("close", () => {
  void chain.then(async () => {
    await fleet.close();
    process.exit(0);
  });
});
