/**
 * Who may connect: the CONNECT's client id must be a device id, equal to the username when one is given, and the
 * password must be the device's secret. Expected refusals are values carrying the MQTT 3.1.1 CONNACK return code.
 */
import { isValidDeviceId } from "../codecs/index.ts";
import { mayPublish } from "./acl.ts";
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

export type AuthDecision =
  | { status: "accepted"; device: DeviceRecord | undefined }
  | {
      status: "refused";
      /**
       * CONNACK return code: 2 identifier rejected, 4 bad user name or password (also for an unknown device, so ids
       * cannot be probed), 5 not authorized (a last will outside the device's own topics).
       */
      returnCode: 2 | 4 | 5;
      reason: AuthFailureReason;
      code: string;
      message: string;
    };

export interface AuthPolicy {
  registry: DeviceRegistry;
  /** Accept devices absent from the registry without credentials. */
  anonymous: boolean;
}

function refused(returnCode: 2 | 4 | 5, reason: AuthFailureReason, code: string, message: string): AuthDecision {
  return { status: "refused", returnCode, reason, code, message };
}

/** Decides a CONNECT. Never throws for bad input; a registry fault rejects the promise. */
export async function authenticateDevice(policy: AuthPolicy, creds: ConnectCredentials): Promise<AuthDecision> {
  const id = creds.clientId;
  if (typeof id !== "string" || !isValidDeviceId(id)) {
    return refused(2, "client-id", BrokerErrorCode.authClientId, "client id must be a device id [A-Za-z0-9_.-]{1,64}");
  }
  if (creds.username !== undefined && creds.username !== id) {
    return refused(2, "client-id", BrokerErrorCode.authClientId, "client id must equal the username (device id)");
  }
  if (creds.willTopic !== undefined && !mayPublish(id, creds.willTopic)) {
    return refused(5, "will-denied", BrokerErrorCode.authWillDenied, "last will must be under devices/{id}/up/");
  }
  const device = policy.registry.get(id);
  if (!device && policy.anonymous) return { status: "accepted", device: undefined };
  // An unknown device and a wrong secret get the same CONNACK (4) after the same scrypt work, so neither the code nor
  // the timing tells an attacker which device ids exist. The reason differs only in logs and counters.
  const verdict = await policy.registry.verify(id, creds.password?.toString("utf8") ?? "");
  if (!device) return refused(4, "unknown-device", BrokerErrorCode.authUnknownDevice, "unknown device");
  if (creds.password === undefined || creds.username === undefined) {
    return refused(4, "bad-credentials", BrokerErrorCode.authFailed, "username and password are required");
  }
  if (verdict.status !== "ok") {
    return refused(4, "bad-credentials", BrokerErrorCode.authFailed, "bad username or password");
  }
  return { status: "accepted", device: verdict.device };
}
