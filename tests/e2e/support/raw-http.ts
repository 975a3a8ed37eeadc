/** Raw HTTP on a socket, for requests that fetch cannot send (a WebSocket upgrade whose answer is a refusal). */
import net from "node:net";

/**
 * Writes `request` (the whole request head, blank line included) to 127.0.0.1:`port` and resolves with the first
 * line of the answer (its status line, "" when none) once the server closes the socket.
 */
export function rawStatusLine(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(request));
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
    });
    socket.on("close", () => resolve(text.split("\r\n")[0] ?? ""));
    socket.on("error", reject);
  });
}
