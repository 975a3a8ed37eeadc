import type { ConnectPacketOptions } from "../mqtt/lean-connection.ts";
import type { DeviceBehaviour, DeviceConfig } from "./device-env.ts";

/**
 * The CONNECT of a device (DESIGN section 3): client id = username = device id, password = secret; no credentials
 * at all when it has no secret (anonymous brokers). The last will, when configured, has an empty payload: the
 * topic alone says the device vanished.
 */
export function connectPacketFor(config: DeviceConfig, behaviour: DeviceBehaviour): ConnectPacketOptions {
  const withCredentials = config.secret !== undefined;
  return {
    clientId: config.id,
    username: withCredentials ? config.id : undefined,
    password: withCredentials ? Buffer.from(config.secret ?? "") : undefined,
    clean: behaviour.cleanSession,
    keepaliveSec: behaviour.keepaliveSec,
    will: behaviour.lastWillTopic
      ? {
          topic: behaviour.lastWillTopic.replaceAll("{id}", config.id),
          payload: Buffer.alloc(0),
          qos: 1,
          retain: false,
        }
      : undefined,
  };
}
