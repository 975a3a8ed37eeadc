/**
 * The `sim` command's refusals name the flag typed (`--buffer must be ...`), not the fleet option's field
 * (`offlineBufferSize`), which appears nowhere on its command line. The mapping goes through commander's own option
 * list (errors/named-by-flag.ts); only the fields named otherwise than their flag's attribute are listed here.
 */
import type { FlagNaming } from "../errors/index.ts";
import { SimErrorCode } from "./errors.ts";

/**
 * How the fleet's options name a refused field (fleet/options.ts, fleet/api-driver.ts), to name the flag typed
 * instead: most fields are their flag's attribute (`devices` for `--devices`); these are named otherwise.
 */
export const SIM_FLAGS: FlagNaming = {
  code: SimErrorCode.options,
  attributeOf: {
    connectRatePerSec: "connectRate",
    "backoff.mode": "backoff",
    "backoff.baseDelayMs": "backoffBaseMs",
    "backoff.maxDelayMs": "backoffMaxMs",
    "backoff.stableConnectionMs": "stableConnectionMs",
    offlineBufferSize: "buffer",
    maxInflight: "inflight",
    keepaliveSec: "keepalive",
    duplicateRatio: "duplicates",
    networkDropMeanMs: "dropMeanMs",
    lastWillTopic: "willTopic",
    noClockRatio: "clockRatio",
    takeoverPairs: "takeover",
    "driveApi.apiUrl": "verifyApi",
    "driveApi.commandsPerMin": "commandsPerMin",
    "driveApi.desiredPerMin": "desiredPerMin",
  },
};
