/**
 * Command ack timeout. A command the device was sent (SENT) and has not acknowledged `ackTimeoutMs` after its latest
 * delivery goes again while the device is online: the same id (firmware dedups by id), one more of its attempts, as a
 * reconnect sends it; out of attempts it ends FAILED and its place in the window goes to the next. Without it, a
 * `down/cmd` the broker refused or the firmware dropped held its place until a reconnect or its TTL (an hour by
 * default), jamming the queue of a device that stayed connected. The timer is one of the agent's alarms (a schedule
 * row), so it outlives hibernation and restarts; each delivery replaces it, and the command's end cancels it.
 */
import type { Value } from "../../codecs/frames.ts";
import type { AckTimer } from "./command-outbox.ts";
import type { DeviceCore } from "./device-core.ts";
import type { DevicePorts } from "./ports.ts";
import { isValueMap } from "./values.ts";

/** Agent method the ack timeout alarm calls (public on DeviceAgent). */
export const ACK_TIMEOUT_METHOD = "commandAckTimedOut";

/** The outbox's ack timer, over the agent's alarms; `defaultMs` is the class's `commandAckTimeoutMs`. */
export function ackTimer(ports: DevicePorts, defaultMs: number): AckTimer {
  return {
    defaultMs,
    rearm: (commandId, timeoutMs, previous) => {
      if (previous !== null) ports.cancelSchedule(previous);
      return timeoutMs > 0 ? ports.scheduleIn(timeoutMs / 1000, ACK_TIMEOUT_METHOD, { id: commandId }).id : null;
    },
  };
}

/**
 * The alarm fired for command `payload.id`. The outbox checks that the timeout did elapse since the latest delivery,
 * so a call ahead of time (the method is public) or an alarm left over changes nothing.
 */
export function onAckTimeout(core: DeviceCore, payload: Value): void {
  if (!isValueMap(payload) || typeof payload.id !== "string") return;
  core.redeliverTimedOut(payload.id);
}
