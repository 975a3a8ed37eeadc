/** The broker's own handling of up messages, one file per channel that needs any, dispatched by one switch. */
import type { UpMessage } from "../../codecs/frames.ts";
import type { HandlerContext } from "./context.ts";
import { handleHello } from "./hello.ts";

export type { HandlerContext } from "./context.ts";

/** Runs the broker-side effects of an up message before it is delivered to the agent. */
export function handleUp(ctx: HandlerContext, message: UpMessage): void {
  switch (message.channel) {
    case "hello":
      handleHello(ctx, message.frame);
      return;
    case "telemetry":
    case "state":
    case "ack":
    case "rpc":
    case "reason":
      // Agent business only: the broker passes them through untouched.
      return;
  }
}
