/**
 * The broker's access rules, in one place: a device publishes only under `devices/{its id}/up/` and subscribes only
 * under `devices/{its id}/down/` (DESIGN section 7).
 */

const PREFIX = "devices/";

/** True when `topic` is inside the device's own up namespace. */
export function mayPublish(deviceId: string, topic: string): boolean {
  return topic.startsWith(`${PREFIX}${deviceId}/up/`);
}

/**
 * True when `filter` can only match the device's own down topics. The prefix is literal, so a wildcard can never
 * reach another device's namespace (`devices/+/down/#` is refused).
 */
export function maySubscribe(deviceId: string, filter: string): boolean {
  const prefix = `${PREFIX}${deviceId}/down/`;
  return filter.startsWith(prefix) && filter.length > prefix.length;
}

/** True for topics under any device's up namespace: those are consumed by the bridge and never forwarded. */
export function isUpTopic(topic: string): boolean {
  const parts = topic.split("/", 4);
  return parts.length >= 3 && parts[0] === "devices" && parts[2] === "up";
}

/** MQTT topic filter matching ([MQTT-4.7.1]): `+` matches one level, a trailing `#` matches the rest. */
export function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return i === f.length - 1;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
