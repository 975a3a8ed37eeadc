#!/usr/bin/env node
// The CLI entry point: the TypeScript sources load through the hooks that bin/register-loaders.mjs registers.
import "./register-loaders.mjs";

await import("../app/cli.ts");
