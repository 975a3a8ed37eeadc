import type { AckFrame, CommandFrame } from "../../codecs/frames.ts";
import type { Delivery } from "../device/command-book.ts";
import type { DeviceContext } from "./context.ts";

/**
 * `down/cmd`: runs a command once and acks it. A redelivery of a known id is answered with the first ack and not run
 * again; a redelivery after that ack was acknowledged is a violation, unless it is the broker's resend of the PUBLISH
 * that brought it before (CommandBook tells). A device with a clock refuses a command whose expiry (`exp`) it believes
 * has passed.
 */
export function handleCommand(ctx: DeviceContext, frame: CommandFrame, delivery?: Delivery): void {
  ctx.metrics.counters.commandsReceived++;
  const receipt = ctx.commands.receive(frame.id, delivery);
  if (receipt.status === "duplicate") {
    ctx.metrics.counters.commandsRedelivered++;
    // Once the ack is stored the command is finished: the outbox must not send it again. The broker's resend (the
    // device's PUBACK of the command itself was lost) is the broker's business and allowed.
    if (receipt.afterConfirmedAck && !receipt.brokerResend) {
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
  ctx.commands.executed(ack, delivery?.packetId);
  ctx.metrics.counters.acksSent++;
  ctx.send("ack", ack, ack.id);
}
