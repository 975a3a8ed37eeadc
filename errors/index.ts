export { BridgeError, hasErrorCode } from "./bridge-error.ts";
