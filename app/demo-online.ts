/**
 * The demo's "device online (n/N)" lines. The fleet emits `online` on every connection that comes online, reconnects
 * included, so counting events read "5/4" after a kick or a network loss; n counts the devices online now instead.
 */

/** Lines for the fleet's `online` and `offline` events of a demo fleet of `total` devices. */
export interface DemoOnlineLines {
  /** The line to print for an `online` event of `deviceId`. */
  online(deviceId: string): string;
  /** Records an `offline` event (nothing printed: the fleet report counts the drops). */
  offline(deviceId: string): void;
}

/**
 * @example
 * const lines = demoOnlineLines(4);
 * fleet.events.on("online", (id) => print(lines.online(id))); // "device online (1/4): demo-sensor-1"
 * fleet.events.on("offline", (id) => lines.offline(id));
 */
export function demoOnlineLines(total: number): DemoOnlineLines {
  const onlineNow = new Set<string>();
  const seen = new Set<string>();
  return {
    online(deviceId) {
      const again = seen.has(deviceId);
      seen.add(deviceId);
      onlineNow.add(deviceId);
      return `device ${again ? "back online" : "online"} (${onlineNow.size}/${total}): ${deviceId}`;
    },
    offline(deviceId) {
      onlineNow.delete(deviceId);
    },
  };
}
