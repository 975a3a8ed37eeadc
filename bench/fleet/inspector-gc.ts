/**
 * A full garbage collection in a server process started with `--inspect=127.0.0.1:0`, through the inspector protocol
 * (`HeapProfiler.collectGarbage`). The idle-connection phase reads RSS a few seconds after the last CONNACK; an idle
 * process runs no major GC by itself, so that figure also counts the garbage of the connect burst, and it moved by a
 * third between runs with the same code depending on how fast the devices connected. RSS after a full collection
 * measures what is really kept per connection.
 */
import WebSocket from "ws";

/** The inspector URL a node process prints on stderr ("Debugger listening on ws://..."), or undefined. */
export function inspectorUrlIn(text: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(text)?.[1];
}

/** Runs a full GC in the process behind `url`; resolves once it finished, rejects after `timeoutMs`. */
export function collectGarbage(url: string, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`no answer from the inspector at ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("open", () => socket.send(JSON.stringify({ id: 1, method: "HeapProfiler.collectGarbage" })));
    socket.on("message", (data) => {
      const reply = JSON.parse(String(data)) as { id?: number; error?: { message: string } };
      if (reply.id !== 1) return;
      clearTimeout(timer);
      socket.close();
      if (reply.error) reject(new Error(reply.error.message));
      else resolve();
    });
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
