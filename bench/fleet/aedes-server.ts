/**
 * Baseline server for the fleet benchmark: plain aedes relaying over net, no auth, no hooks, no agents, no
 * persistence beyond aedes' in-memory default. Prints `{"port": N}` once listening; SIGTERM closes it.
 */
import { Aedes } from "aedes";
import { serveAedesOnLoopback } from "./aedes-on-loopback.ts";

await serveAedesOnLoopback(new Aedes({ maxClientsIdLength: 64 }));
