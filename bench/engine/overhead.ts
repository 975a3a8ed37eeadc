/**
 * Client overhead benchmark (`node --import tsx bench/engine/overhead.ts`): the CPU and wall time the engine
 * client adds per request and per streamed token over a bare caller (bench/engine/direct.ts), both against one
 * in-process server that answers instantly with a canned SSE stream, so the engine's own cost is out of the
 * picture. Requests run one at a time. Figures are medians of rounds; modes alternate inside a round.
 *
 * Options: --tokens 1,64  --requests 2000  --rounds 5
 */
import { Cleanup } from "../fleet/cleanup.ts";
import { machineLine } from "../machine.ts";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createEngineClient } from "../../engine-client/index.ts";
import { median } from "../percentile.ts";
import { option } from "./args.ts";
import { createDirectCaller } from "./direct.ts";

const tokenCounts = option("tokens", "1,64").split(",").map(Number);
const requests = Number(option("requests", "2000"));
const rounds = Number(option("rounds", "5"));

function cannedStream(tokens: number): string {
  const chunk = (delta: Record<string, unknown>, finish: string | null) =>
    `data: ${JSON.stringify({ id: "chatcmpl-x", object: "chat.completion.chunk", created: 0, model: "m", choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  let body = chunk({ role: "assistant", content: "" }, null);
  for (let i = 0; i < tokens; i++) body += chunk({ content: ` word${i}` }, i === tokens - 1 ? "stop" : null);
  body += `data: ${JSON.stringify({ id: "chatcmpl-x", choices: [], usage: { prompt_tokens: 20, completion_tokens: tokens, prompt_tokens_details: { cached_tokens: 0 } } })}\n\n`;
  return `${body}data: [DONE]\n\n`;
}

async function main(): Promise<void> {
  // Stops by itself: it runs in under a minute.
  new Cleanup().guardProcess("engine client overhead", 10 * 60_000, (line) => console.error(line));
  let body = "";
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const direct = createDirectCaller(url, 4, "m");
  const engine = createEngineClient({ urls: [url], model: "m", maxInFlightPerReplica: 4 });
  const prompt = { system: "You are an agent.", user: "status?", agentId: "dev-1" };
  const modes = {
    direct: () => direct.call(prompt).then(() => undefined),
    client: async () => {
      const messages = [
        { role: "system" as const, content: prompt.system },
        { role: "user" as const, content: prompt.user },
      ];
      for await (const _ of engine.stream({ messages }, { agentId: "dev-1" })) {
        // drain
      }
    },
  };
  console.log(`machine: ${machineLine()}`);
  console.log(`client overhead: ${requests} sequential requests per round, median of ${rounds} rounds`);
  console.log(
    "| tokens per answer | CPU us/request direct / client | added CPU us/request | added CPU us/token | wall us/request direct / client | added wall us/request |",
  );
  console.log("|---|---|---|---|---|---|");
  for (const tokens of tokenCounts) {
    body = cannedStream(tokens);
    const cpu: Record<string, number[]> = { direct: [], client: [] };
    const wall: Record<string, number[]> = { direct: [], client: [] };
    for (const run of Object.values(modes)) for (let i = 0; i < 200; i++) await run(); // warm-up
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (["direct", "client"] as const) : (["client", "direct"] as const);
      for (const name of order) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        for (let i = 0; i < requests; i++) await modes[name]();
        const used = process.cpuUsage(c0);
        // The server runs in this process too; it does the same work for both modes, so differences are the client's.
        cpu[name].push((used.user + used.system) / requests);
        wall[name].push(((performance.now() - t0) * 1000) / requests);
      }
    }
    const [cd, cc, wd, wc] = [median(cpu.direct), median(cpu.client), median(wall.direct), median(wall.client)];
    console.log(
      `| ${tokens} | ${cd.toFixed(0)} / ${cc.toFixed(0)} | ${(cc - cd).toFixed(0)} | ${((cc - cd) / tokens).toFixed(1)} | ${wd.toFixed(0)} / ${wc.toFixed(0)} | ${(wc - wd).toFixed(0)} |`,
    );
  }
  await engine.close();
  await direct.close();
  server.close();
}

await main();
