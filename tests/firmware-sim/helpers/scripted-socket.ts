/**
 * An in-memory broker end for one simulated device's connection: it parses what the device writes and lets a test
 * script the broker's answers, including not answering and not closing.
 */
import { Duplex } from "node:stream";
import mqttPacket, { type Packet } from "mqtt-packet";

/** What a scripted broker may do on a packet: answer it, or close the connection from its side. */
export interface ScriptedBroker {
  reply(packet: Packet): void;
  close(): void;
}

/** A socket whose broker side runs `onPacket` for every packet the device sends; it never closes unless told to. */
export function scriptedSocket(onPacket: (packet: Packet, broker: ScriptedBroker) => void): Duplex {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const socket: Duplex = new Duplex({
    allowHalfOpen: true,
    read() {},
    write(chunk: Buffer, _encoding, done) {
      parser.parse(chunk);
      done();
    },
  });
  const broker: ScriptedBroker = {
    reply: (packet) => setImmediate(() => socket.push(mqttPacket.generate(packet))),
    close: () => setImmediate(() => socket.destroy()),
  };
  parser.on("packet", (packet: Packet) => onPacket(packet, broker));
  return socket;
}

/** Answers CONNECT, SUBSCRIBE and QoS 1 PUBLISH like a broker, and closes the connection on a DISCONNECT. */
export function acknowledge(packet: Packet, broker: ScriptedBroker): void {
  if (packet.cmd === "connect") broker.reply({ cmd: "connack", returnCode: 0, sessionPresent: false });
  if (packet.cmd === "subscribe") broker.reply({ cmd: "suback", messageId: packet.messageId, granted: [1] });
  if (packet.cmd === "publish" && packet.qos === 1) broker.reply({ cmd: "puback", messageId: packet.messageId });
  if (packet.cmd === "disconnect") broker.close();
}
