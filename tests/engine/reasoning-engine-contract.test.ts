/** The ReasoningEngine contract, run by the engine client against each server dialect the simulator speaks. */
import { createEngineClient } from "../../engine-client/index.ts";
import { type EngineSimInit, startEngineSimulator } from "../../engine-client/sim/index.ts";
import { describeReasoningEngineContract } from "./reasoning-engine-contract.ts";

function clientOn(init: EngineSimInit) {
  return async () => {
    const sim = await startEngineSimulator({ timeScale: 0, ...init });
    const engine = createEngineClient({ urls: [sim.url], apiKey: init.apiKey });
    return {
      engine,
      close: async () => {
        await engine.close();
        await sim.close();
      },
    };
  };
}

describeReasoningEngineContract("engine client, vLLM dialect", clientOn({}));
describeReasoningEngineContract(
  "engine client, CRLF and flat errors",
  clientOn({ sseLineEnding: "\r\n", errorFormat: "flat" }),
);
describeReasoningEngineContract("engine client, API key required", clientOn({ apiKey: "contract-key" }));
