/**
 * Dispatch of decoded down frames to their handlers: one file per channel, one switch.
 */
import type { DownMessage } from "../../codecs/frames.ts";
import { handleCommand } from "./cmd.ts";
import type { DeviceContext } from "./context.ts";
import { handleError } from "./error.ts";
import { handleIdentity } from "./identity.ts";
import { handleReasonStream } from "./reason.ts";
import { handleRpcResult } from "./rpc.ts";
import { handleDownState } from "./state.ts";

export type { DeviceContext } from "./context.ts";

/** Runs the handler of `message`'s channel. `dup` is the MQTT DUP flag of the PUBLISH that carried it. */
export function dispatchDown(ctx: DeviceContext, message: DownMessage, dup: boolean): void {
  switch (message.channel) {
    case "identity":
      handleIdentity(ctx, message.frame);
      return;
    case "state":
      handleDownState(ctx, message.frame);
      return;
    case "cmd":
      handleCommand(ctx, message.frame, dup);
      return;
    case "rpc":
      handleRpcResult(ctx, message.frame);
      return;
    case "reason":
      handleReasonStream(ctx, message.frame, dup);
      return;
    case "error":
      handleError(ctx, message.frame);
      return;
  }
}
