/**
 * Who may connect: the CONNECT's client id must be a device id, equal to the username when one is given, and the
 * password must be the device's secret. Expected refusals are values carrying the MQTT 3.1.1 CONNACK return code.
 */
import { DEVICE_ID_RULE, isValidDeviceId } from "../codecs/index.ts";
import { mayPublish } from "./acl.ts";
import type { VerificationTicket } from "./connect-guard/index.ts";
import { BrokerErrorCode } from "./errors.ts";
import type { AuthFailureReason } from "./observer.ts";
import type { DeviceRecord, DeviceRegistry } from "./registry/index.ts";

/** The facts of a CONNECT that authentication looks at. */
export interface ConnectCredentials {
  /** The client id exactly as sent (aedes invents one for an empty id; that one is refused here). */
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  willTopic: string | undefined;
}

/** A CONNACK return code that refuses a CONNECT (MQTT 3.1.1, 3.2.2.3). */
export type RefusalCode = 2 | 3 | 4 | 5;

/** A refused CONNECT: its CONNACK return code and, for logs and counters, why. */
export interface AuthRefusal {
  status: "refused";
  /**
   * CONNACK return code: 2 identifier rejected, 3 server unavailable (too many verifications waiting), 4 bad user name
   * or password (also for an unknown device, so ids cannot be probed), 5 not authorized (a last will outside the
   * device's own topics, or a source address blocked after too many failures).
   */
  returnCode: RefusalCode;
  reason: AuthFailureReason;
  code: string;
  message: string;
}

export type AuthDecision =
  | { status: "accepted"; device: DeviceRecord | undefined }
  | AuthRefusal
  /** The connection went away while waiting for its verification: nothing was decided, nothing is owed. */
  | { status: "abandoned" };

export interface AuthPolicy {
  registry: DeviceRegistry;
  /** Accept devices absent from the registry without credentials. */
  anonymous: boolean;
  /**
   * Asked before each secret verification the credential cache cannot spare (scrypt work on the thread pool): a turn,
   * or a refusal (broker/connect-guard). Default: every verification runs at once.
   */
  admitVerification?: () => Promise<VerificationTicket>;
}

function refused(returnCode: RefusalCode, reason: AuthFailureReason, code: string, message: string): AuthRefusal {
  return { status: "refused", returnCode, reason, code, message };
}

const UNGUARDED: VerificationTicket = { status: "granted", finish() {} };

/** The refusal of a CONNECT while too many others wait for their verification (CONNACK 3: retry later). */
export const SERVER_BUSY: AuthRefusal = refused(
  3,
  "server-busy",
  BrokerErrorCode.authBusy,
  "too many connections being verified; try again later",
);

/** The refusal of a CONNECT from an address blocked after too many failed authentications (CONNACK 5). */
export const ADDRESS_BLOCKED: AuthRefusal = refused(
  5,
  "address-blocked",
  BrokerErrorCode.authBlocked,
  "too many failed authentications from this address; try again later",
);

/** A device whose record was removed (or removed and added again) while its secret was being checked. */
const REMOVED_WHILE_VERIFIED: AuthRefusal = refused(
  4,
  "unknown-device",
  BrokerErrorCode.authUnknownDevice,
  "device removed from the registry while its CONNECT was being verified",
);

/** A device whose secret was rotated while its old one was being checked: that one is no longer its secret. */
const ROTATED_WHILE_VERIFIED: AuthRefusal = refused(
  4,
  "bad-credentials",
  BrokerErrorCode.authFailed,
  "secret rotated while the CONNECT was being verified",
);

/**
 * The refusal of an accepted CONNECT whose secret stopped being the device's while it was checked: `verified` is the
 * record the secret verified against, `current` the record read again once the check ended (undefined: gone). The
 * record removed and added again (another `recordId`) is refused as an unknown device, a rotated secret (another
 * `secretId`) as a wrong one; CONNACK 4 either way. Undefined when the secret is still the device's.
 */
export function staleVerification(verified: DeviceRecord, current: DeviceRecord | undefined): AuthRefusal | undefined {
  if (current === undefined || current.recordId !== verified.recordId) return REMOVED_WHILE_VERIFIED;
  if (current.secretId !== verified.secretId) return ROTATED_WHILE_VERIFIED;
  return undefined;
}

/** Decides a CONNECT. Never throws for bad input; a registry fault rejects the promise. */
export async function authenticateDevice(policy: AuthPolicy, creds: ConnectCredentials): Promise<AuthDecision> {
  const id = creds.clientId;
  if (typeof id !== "string" || !isValidDeviceId(id)) {
    return refused(2, "client-id", BrokerErrorCode.authClientId, `client id must be a device id: ${DEVICE_ID_RULE}`);
  }
  if (creds.username !== undefined && creds.username !== id) {
    return refused(2, "client-id", BrokerErrorCode.authClientId, "client id must equal the username (device id)");
  }
  if (creds.willTopic !== undefined && !mayPublish(id, creds.willTopic)) {
    return refused(5, "will-denied", BrokerErrorCode.authWillDenied, "last will must be under devices/{id}/up/");
  }
  const device = policy.registry.get(id);
  if (!device && policy.anonymous) return { status: "accepted", device: undefined };
  const secret = creds.password?.toString("utf8") ?? "";
  const complete = creds.password !== undefined && creds.username !== undefined;
  // The secret that verified for this device recently: no scrypt, and no place in the verification queue, so a flood
  // of bogus CONNECTs does not hold a known device's reconnect. A hit needs the right secret, so it tells nothing to
  // someone who does not have it (docs/broker.md, "Credential cache").
  const remembered = device && complete ? policy.registry.recall(id, secret) : undefined;
  if (remembered !== undefined) return { status: "accepted", device: remembered };
  const ticket = policy.admitVerification === undefined ? UNGUARDED : await policy.admitVerification();
  if (ticket.status === "abandoned") return ticket;
  if (ticket.status === "refused") return ticket.reason === "address-blocked" ? ADDRESS_BLOCKED : SERVER_BUSY;
  let failed = false;
  try {
    // An unknown device and a wrong secret get the same CONNACK (4) after the same scrypt work, so neither the code
    // nor the timing tells an attacker which device ids exist. The reason differs only in logs and counters.
    const verdict = await policy.registry.verify(id, secret);
    failed = true;
    if (!device) return refused(4, "unknown-device", BrokerErrorCode.authUnknownDevice, "unknown device");
    if (!complete) {
      return refused(4, "bad-credentials", BrokerErrorCode.authFailed, "username and password are required");
    }
    if (verdict.status !== "ok") {
      return refused(4, "bad-credentials", BrokerErrorCode.authFailed, "bad username or password");
    }
    failed = false;
    return { status: "accepted", device: verdict.device };
  } finally {
    // A registry fault is the server's, not a failure of the device's address.
    ticket.finish(failed);
  }
}
