/** Limits between a CONNECT and its secret verification: per-address failures, and verifications at once. */
export { addressKey } from "./address-key.ts";
export { AddressFailures, type AddressFailuresOptions } from "./address-failures.ts";
export { ConnectGuard, type ConnectGuardLimits, type VerificationTicket } from "./connect-guard.ts";
export { type ReleaseSlot, VerificationSlots } from "./verification-slots.ts";
