import type { RpcResultFrame } from "../../codecs/frames.ts";
import type { DeviceContext } from "./context.ts";

/** `down/rpc`: the result of an rpc call. Simulated firmware makes no calls of its own, so it only counts results. */
export function handleRpcResult(ctx: DeviceContext, _frame: RpcResultFrame): void {
  ctx.metrics.counters.rpcResults++;
}
