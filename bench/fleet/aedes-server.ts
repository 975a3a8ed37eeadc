/**
 * Baseline server for the fleet benchmark: plain aedes relaying over net, no auth, no hooks, no agents, no
 * persistence beyond aedes' in-memory default. Prints `{"port": N}` once listening; SIGTERM closes it.
 */
import net from "node:net";
import { Aedes } from "aedes";

const aedes = new Aedes({ maxClientsIdLength: 64 });
// aedes 1.x starts its persistence and mqemitter in listen(), before any client is handled.
await aedes.listen();
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  aedes.handle(socket);
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address && typeof address === "object") process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
process.on("SIGTERM", () => {
  server.close();
  aedes.close(() => process.exit(0));
});
