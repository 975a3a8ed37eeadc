import type { Value } from "../../codecs/frames.ts";
import type { AgentCell } from "../cell.ts";
import { invokeMethod } from "../invoke.ts";

/** An operator call (REST API): any public method declared by the agent's class, hooks and base API excluded. */
export function handleCall(cell: AgentCell, method: string, args: Value[]): Promise<Value> {
  return invokeMethod(cell.agent!, method, args);
}
