/**
 * The cost of one loopback round trip between two Node processes on this machine, by how long the echoing process
 * idled before it (`node --import tsx bench/engine/loopback-hop.ts [--gaps 300,5,0] [--count 100]`). The bridge puts
 * two such hops on the reasoning path that a direct caller of the engine does not have (device to bridge, bridge to
 * device), so this is the part of the bridge's added first-chunk latency that no work in the bridge can remove.
 * A child process echoes 64-byte messages over TCP (TCP_NODELAY, 127.0.0.1, port 0); this process sends one after
 * each gap and times the echo. Stops by itself.
 */
import { Cleanup } from "../fleet/cleanup.ts";
import { machineLine } from "../machine.ts";
import { spawn } from "node:child_process";
import net from "node:net";
import { percentile } from "../percentile.ts";
import { flag, option } from "./args.ts";

if (flag("echo")) {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("data", (data) => socket.write(data));
  });
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    if (address !== null && typeof address === "object") process.stdout.write(`${address.port}\n`);
  });
  // The parent's end closes the pipe: leave with it.
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
} else {
  const gaps = option("gaps", "300,5,0").split(",").map(Number);
  const count = Number(option("count", "100"));
  const cleanup = new Cleanup();
  // Stops by itself: the default gaps take under a minute.
  const disarmDeadline = cleanup.guardProcess("loopback hop", 10 * 60_000, (line) => console.error(line));
  const child = spawn(process.execPath, ["--import", "tsx", import.meta.filename, "--echo"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  cleanup.process(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once("data", (data: Buffer) => resolve(Number(data.toString().trim())));
    child.once("exit", () => reject(new Error("the echo process ended before it listened")));
  });
  const socket = net.connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once("connect", resolve));
  const message = Buffer.alloc(64, "x");
  console.log(`loopback round trip between two idle node processes: ${machineLine()}`);
  console.log("| idle before each, ms | round trips | p10 us | p50 us | p90 us |");
  console.log("|---|---|---|---|---|");
  for (const gapMs of gaps) {
    const rtts: number[] = [];
    for (let i = 0; i < count; i++) {
      await new Promise((resolve) => setTimeout(resolve, gapMs));
      const start = process.hrtime.bigint();
      socket.write(message);
      // 64 bytes on loopback arrive as one read.
      await new Promise((resolve) => socket.once("data", resolve));
      rtts.push(Number(process.hrtime.bigint() - start) / 1000);
    }
    const at = (p: number) => percentile(rtts, p).toFixed(0);
    console.log(`| ${gapMs} | ${count} | ${at(10)} | ${at(50)} | ${at(90)} |`);
  }
  socket.destroy();
  child.stdin.end();
  disarmDeadline();
}
