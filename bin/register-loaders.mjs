// Registers the module hooks the `agent-bridge` command runs with (imported first by bin/agent-bridge.js): tsx for
// TypeScript in general, such as an operator's agent class modules, and bin/typescript-hooks.mjs for the bridge's
// own sources (that file says why). Registered last, the latter is asked first.
import { register } from "node:module";
import { register as registerTsx } from "tsx/esm/api";

registerTsx();
// Stack traces point into the .ts files (both transforms embed source maps).
process.setSourceMapsEnabled(true);
register("./typescript-hooks.mjs", import.meta.url);
