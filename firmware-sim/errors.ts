/**
 * Error codes of the fleet simulator (docs/errors.md, "Fleet simulator"). Faults only: what the system under test
 * does wrong is reported as violations (invariants/violations.ts), not errors.
 */
export const SimErrorCode = {
  /** An option of createFleet or a CLI flag is invalid; `details.field` names it. */
  options: "BRIDGE_ERR_SIM_OPTIONS",
  /** The credentials file cannot be read or is not a JSON array / JSON lines of {"id","secret"}. */
  credentials: "BRIDGE_ERR_SIM_CREDENTIALS",
  /** `start()` was called twice, or after `stop()`. */
  state: "BRIDGE_ERR_SIM_STATE",
  /** The broker sent bytes that are not valid MQTT 3.1.1 (a connection's close reason, not thrown). */
  protocol: "BRIDGE_ERR_SIM_PROTOCOL",
} as const;
