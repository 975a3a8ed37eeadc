/** `GET /v1/models`: the one served model, shaped like vLLM's answer. */
import type { ServerResponse } from "node:http";
import type { SimContext } from "../context.ts";
import { sendJson } from "../respond.ts";

export function handleModels(ctx: SimContext, res: ServerResponse): void {
  const { model, maxModelLen } = ctx.options;
  sendJson(res, 200, {
    object: "list",
    data: [
      {
        id: model,
        object: "model",
        created: 0,
        owned_by: "vllm",
        root: model,
        parent: null,
        max_model_len: maxModelLen,
      },
    ],
  });
}
