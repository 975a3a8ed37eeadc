/**
 * A bridge config whose agent class module signals its own process as it is imported, and whose import ends only once
 * the signal has been heard: the signal lands inside createBridge, before bridge.start().
 */
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "./bridge-process.ts";

/** Writes the module and a config file naming it into `dir`; returns the config file's path. */
export function writeSignalOnImportConfig(dir: string): string {
  fs.writeFileSync(
    path.join(dir, "signal-on-import.mts"),
    [
      `import { DeviceAgent } from ${JSON.stringify(path.join(ROOT, "agents/device/index.ts"))};`,
      'process.kill(process.pid, "SIGTERM");',
      // A signal does not keep the event loop alive until it is heard: the interval does.
      "const alive = setInterval(() => {}, 60_000);",
      'await new Promise((resolve) => process.once("SIGTERM", resolve));',
      "clearInterval(alive);",
      "export class SignalOnImport extends DeviceAgent {}",
    ].join("\n"),
  );
  const configFile = path.join(dir, "bridge.json");
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      agents: { classes: [{ pattern: "sig-*", module: "./signal-on-import.mts", export: "SignalOnImport" }] },
    }),
  );
  return configFile;
}
