/**
 * Turns off mqtt-packet's table of number buffers. By default the first packet written fills a table of 65,536
 * two-byte Buffers, one per 16-bit number (packet ids, the length prefix of every topic), kept for the life of the
 * process to save one small allocation per number written: several MiB of heap that a bridge of few devices pays in
 * full (docs/broker.md, "Memory"). Without it each number written is a fresh two-byte Buffer from Node's pool.
 *
 * The setting is module-wide (aedes and the down path share the one mqtt-packet) and read at each write; a table
 * already filled would stay allocated, so it is set before the broker writes anything.
 */
import mqttPacket from "mqtt-packet";

export function writePacketNumbersUncached(): void {
  mqttPacket.writeToStream.cacheNumbers = false;
}
