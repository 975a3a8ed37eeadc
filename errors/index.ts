export { BridgeError, hasErrorCode } from "./bridge-error.ts";
export { type FlagNaming, type FlagSource, namedByFlag } from "./named-by-flag.ts";
export { refuseNewerSchema } from "./newer-schema.ts";
