/**
 * What the demo sets beneath the user's flags, environment and config file (app/demo.ts), in a module of its own so
 * the CLI's help can name them (cli/tools.ts) without loading the demo, which pulls in the runtime and the fleet.
 */
export const DEMO_DEFAULTS = { host: "127.0.0.1", mqttPort: 0, httpPort: 0, logLevel: "warn" } as const;
