#!/usr/bin/env node
// The CLI entry point: loads the TypeScript sources through tsx (one toolchain for running and testing).
import { register } from "tsx/esm/api";

register();
await import("../app/cli.ts");
