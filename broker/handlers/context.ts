import type { DeviceConnection } from "../connection.ts";
import type { BrokerLogger } from "../options.ts";
import type { DeviceRegistry } from "../registry/index.ts";

/** What an up-channel handler may use: the broker's side effects happen before the event reaches the agent. */
export interface HandlerContext {
  registry: DeviceRegistry;
  logger: BrokerLogger;
  connection: DeviceConnection;
  /** True for devices accepted in anonymous mode that have no registry record to update. */
  registered: boolean;
}
