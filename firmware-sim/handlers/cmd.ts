import type { AckFrame, CommandFrame } from "../../codecs/frames.ts";
import type { DeviceContext } from "./context.ts";

/**
 * `down/cmd`: runs a command once and acks it. A redelivery of a known id is answered with the first ack and not run
 * again; a redelivery after that ack was acknowledged is a violation. A device with a clock refuses a command whose
 * expiry (`exp`) it believes has passed.
 */
export function handleCommand(ctx: DeviceContext, frame: CommandFrame, dup = false): void {
  ctx.metrics.counters.commandsReceived++;
  const receipt = ctx.commands.receive(frame.id);
  if (receipt.status === "duplicate") {
    ctx.metrics.counters.commandsRedelivered++;
    // Once the ack is stored the command is finished: the outbox must not send it again. An MQTT retransmission
    // (DUP set: the device's PUBACK of the command itself was lost) is the broker's business and allowed.
    if (receipt.afterConfirmedAck && !dup) {
      ctx.violation("command-redelivered-after-ack", `command ${frame.id}: delivered again after its ack was stored`);
    }
    ctx.metrics.counters.acksSent++;
    ctx.send("ack", receipt.ack, receipt.ack.id);
    return;
  }
  const deviceNow = ctx.deviceNowMs();
  let ack: AckFrame;
  if (frame.exp !== undefined && deviceNow !== undefined && deviceNow > frame.exp) {
    ack = { id: frame.id, ok: false, err: "expired" };
  } else {
    const target = {
      applyState: (patch: Parameters<NonNullable<DeviceContext["shadow"]>["report"]>[0]) => {
        if (!ctx.shadow) return false;
        ctx.metrics.counters.stateReports++;
        ctx.send("state", ctx.shadow.report(patch));
        return true;
      },
    };
    ack = { id: frame.id, ...ctx.profile.execute(frame.n, frame.a, target) };
  }
  ctx.commands.executed(ack);
  ctx.metrics.counters.acksSent++;
  ctx.send("ack", ack, ack.id);
}
