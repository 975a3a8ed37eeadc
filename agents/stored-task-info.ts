import type { Value } from "../codecs/frames.ts";
import type { TaskInfo } from "./types.ts";
import { decodeValue } from "./value-codec.ts";

/**
 * A task as its row stores it, for a task hook. The input is decoded when the hook first reads it, afresh for each
 * object as a read of the row would be, and at most once per object: a progress event whose hook never looks at the
 * input (the DeviceAgent finds its turn by task id) decodes nothing, where a decode per streamed chunk was a tenth of
 * the first chunk's way through the agent (issue #5). An own, enumerable property like any TaskInfo's: spread, JSON
 * and assignment see a plain `input`.
 */
export function storedTaskInfo(id: string, kind: string, input: Uint8Array | null, startedAt: number): TaskInfo {
  let decoded: { value: Value } | undefined;
  return {
    id,
    kind,
    get input(): Value {
      decoded ??= { value: decodeValue(input) };
      return decoded.value;
    },
    set input(value: Value) {
      decoded = { value };
    },
    startedAt,
  };
}
