/** `up/ack`: the result of a command. A repeated ack (QoS 1 redelivery, firmware retry) is ignored by id. */
import type { AckFrame } from "../../../codecs/frames.ts";
import type { Connection } from "../../types.ts";
import type { CommandRecord } from "../command-outbox.ts";
import type { DeviceCore } from "../device-core.ts";

export function handleAck(core: DeviceCore, conn: Connection, frame: AckFrame): CommandRecord | undefined {
  if (typeof frame?.id !== "string" || typeof frame.ok !== "boolean") {
    core.sendError(conn, "BRIDGE_ERR_FRAME_INVALID", "ack needs id (text) and ok (boolean)");
    return undefined;
  }
  const outcome = core.commands.ack(
    frame.id,
    frame.ok,
    frame.res ?? null,
    typeof frame.err === "string" ? frame.err : null,
  );
  if (outcome.status !== "applied") {
    core.ports.logger.debug({ command: frame.id, outcome: outcome.status }, "ack ignored");
    return undefined;
  }
  core.commandFinished(outcome.command, outcome.alarms);
  return outcome.command;
}
