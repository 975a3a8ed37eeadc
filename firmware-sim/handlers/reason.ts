import type { ReasonStreamFrame } from "../../codecs/frames.ts";
import type { DeviceContext } from "./context.ts";

/** `down/reason`: a streamed chunk or the final frame of the device's open reasoning request. */
export function handleReasonStream(ctx: DeviceContext, frame: ReasonStreamFrame, dup: boolean): void {
  const m = ctx.metrics;
  const outcome = ctx.reasons.onFrame(frame, dup, ctx.nowMs());
  switch (outcome.status) {
    case "chunk":
      m.counters.reasonChunks++;
      return;
    case "finished":
      m.counters.reasonChunks++;
      m.counters.reasonFinished++;
      m.reasonFirstChunk.record(outcome.firstChunkMs);
      m.reasonTotal.record(outcome.totalMs);
      ctx.reasonDone();
      return;
    case "duplicate":
      return;
    case "violation":
      ctx.violation(outcome.kind, outcome.message);
      return;
  }
}
