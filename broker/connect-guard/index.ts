/**
 * Limits between a CONNECT and its secret verification: per-address failures (beyond which CONNECTs wait in their
 * address's line), and verifications at once.
 */
export { addressKey } from "./address-key.ts";
export { AddressFailures, type AddressFailuresOptions } from "./address-failures.ts";
export { AddressLines, type LineEntry } from "./address-lines.ts";
export { ConnectGuard, type ConnectGuardLimits, type VerificationTicket } from "./connect-guard.ts";
export { type ReleaseSlot, VerificationSlots } from "./verification-slots.ts";
