/**
 * Serves an aedes broker over net on 127.0.0.1, port 0, for a benchmark's target process (aedes-server.ts,
 * bench/engine/relay-floor.ts): TCP_NODELAY on every socket, `{"port": N}` printed once listening (what
 * targets.ts startScriptTarget waits for), and SIGTERM closes the server, runs `onStop`, closes aedes and exits.
 */
import net from "node:net";
import type { Aedes } from "aedes";

export async function serveAedesOnLoopback(aedes: Aedes, onStop: () => void = () => {}): Promise<void> {
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
    onStop();
    aedes.close(() => process.exit(0));
  });
}
