/**
 * Dispatch of decoded down frames to their handlers: one file per channel, one switch.
 */
import type { DownMessage } from "../../codecs/frames.ts";
import { handleCommand } from "./cmd.ts";
import type { Delivery } from "../device/command-book.ts";
import type { DeviceContext } from "./context.ts";
import { handleError } from "./error.ts";
import { handleIdentity } from "./identity.ts";
import { handleReasonStream } from "./reason.ts";
import { handleRpcResult } from "./rpc.ts";
import { handleDownState } from "./state.ts";

export type { DeviceContext } from "./context.ts";

/** Runs the handler of `message`'s channel; `delivery` tells of the PUBLISH that carried it. */
export function dispatchDown(ctx: DeviceContext, message: DownMessage, delivery: Delivery): void {
  switch (message.channel) {
    case "identity":
      handleIdentity(ctx, message.frame);
      return;
    case "state":
      handleDownState(ctx, message.frame);
      return;
    case "cmd":
      handleCommand(ctx, message.frame, delivery);
      return;
    case "rpc":
      handleRpcResult(ctx, message.frame);
      return;
    case "reason":
      handleReasonStream(ctx, message.frame, delivery.dup);
      return;
    case "error":
      handleError(ctx, message.frame);
      return;
  }
}
