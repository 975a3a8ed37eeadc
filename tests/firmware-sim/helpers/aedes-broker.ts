/**
 * A plain aedes broker on 127.0.0.1, port 0: no bridge code, the simulated devices are just MQTT clients to it.
 */
import net from "node:net";
import { Aedes } from "aedes";

export interface TestBroker {
  url: string;
  port: number;
  broker: Aedes;
  close(): Promise<void>;
}

export async function startAedes(options: Parameters<typeof Aedes.createBroker>[0] = {}): Promise<TestBroker> {
  const broker = await Aedes.createBroker(options);
  const server = net.createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    broker,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
