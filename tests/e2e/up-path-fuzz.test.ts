/**
 * Property test of the agent-level up path: a real bridge in process, real loopback MQTT, and per codec a device
 * that publishes frames well formed in its codec but adversarial in every value (support/adversarial-frames.ts),
 * beside a bystander device. After every frame: no unhandled rejection, every frame the codec refuses answered by a
 * `down/error` with its code, every frame the agent refuses answered by its documented error, every down frame in the
 * device's own codec and within its `maxFrame`. After every run of frames: the bystander's telemetry, rpc and commands
 * work, the fuzzed device's valid frames work (no poisoned agent state), and its agent reads back over the HTTP API.
 * The bridge's own decoder is the oracle of what the codec refuses; the codec fuzz tests check that decoder itself.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import fc from "fast-check";
import { pino } from "pino";
import { type Bridge, createBridge } from "../../app/bridge.ts";
import {
  type CodecName,
  type DownFrames,
  decodeUpMessage,
  formatUpTopic,
  getCodec,
  type UpMessage,
} from "../../codecs/index.ts";
import { type EngineSimulator, startEngineSimulator } from "../../engine-client/sim/index.ts";
import { apiCaller } from "../support/api-caller.ts";
import { loopbackConfig, provisionDevices } from "../support/in-process-bridge.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { type PlannedEntry, type PlannedFrame, plannedFrame } from "./support/adversarial-frames.ts";
import { makeTempDir } from "./support/bridge-process.ts";
import { connectDevice, type TestDevice } from "./support/device.ts";
import { type RawEntry, writeRawFrame } from "./support/raw-frame-writers.ts";

// Fixed seed (FUZZ_SEED and FUZZ_RUNS override it for a longer hunt). No shrinking: the agent's state carries over
// from one run to the next, so a shrunk run would not replay against the state that failed; a failure prints the
// run's frames and the hex of the frame that failed, to make a plain regression test of.
const RUNS = {
  numRuns: Number(process.env.FUZZ_RUNS ?? 40),
  seed: Number(process.env.FUZZ_SEED ?? 20260517),
  endOnFailure: true,
};
const TOKEN = "up-path-fuzz-token-0123456789";
const MAX_PAYLOAD = 65_536;
/** A maxFrame from which every refusal, rpc result and final reasoning frame of these frames fits. */
const ROOMY_FRAME = 1024;
const CALLABLE = new Set(["ping", "getShadow", "getStatus", "getCommand"]);
/** Every code a device may be sent on down/error (docs/errors.md); anything else is a leak of an internal error. */
const DEVICE_ERROR_CODES = new Set([
  "BRIDGE_ERR_FRAME_DECODE",
  "BRIDGE_ERR_FRAME_INVALID",
  "BRIDGE_ERR_FRAME_TOO_DEEP",
  "BRIDGE_ERR_FRAME_TOO_LARGE",
  "BRIDGE_ERR_UNKNOWN_CHANNEL",
  "BRIDGE_ERR_STALE_VERSION",
  "BRIDGE_ERR_TELEMETRY_TOO_MANY",
  "BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN",
  "BRIDGE_ERR_REASON_BUSY",
  "BRIDGE_ERR_ENGINE_NOT_CONFIGURED",
  "BRIDGE_ERR_ENGINE_BAD_REQUEST",
  "BRIDGE_ERR_ENGINE_UNAVAILABLE",
  "BRIDGE_ERR_ENGINE_OVERLOADED",
  "BRIDGE_ERR_ENGINE_TIMEOUT",
  "BRIDGE_ERR_ENGINE_STREAM_BROKEN",
]);

const dataDir = makeTempDir("up-path-fuzz-");
const clock = new ManualClock();
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
let sim: EngineSimulator;
let bridge: Bridge;
let http = "";
let mqttPort = 0;
const api = apiCaller(TOKEN);
const devices = new Map<string, { device: TestDevice; secret: string }>();

before(async () => {
  process.on("unhandledRejection", onUnhandled);
  process.on("uncaughtException", onUnhandled);
  sim = await startEngineSimulator({ timeScale: 0 });
  const config = loopbackConfig({ dataDir, apiToken: TOKEN, engineUrls: [sim.url] });
  // The fuzz sends far more than a device's default rate; the clock stands still, so no bucket would refill.
  const mqtt = {
    ...config.mqtt,
    limits: { ...config.mqtt.limits, messagesPerSecond: 1_000_000, burstMessages: 1_000_000 },
  };
  bridge = await createBridge({ ...config, mqtt }, { logger: pino({ level: "silent" }), clock });
  const addresses = await bridge.start();
  http = `http://127.0.0.1:${addresses.http?.port}`;
  mqttPort = addresses.mqtt?.port ?? 0;
  for (const codec of ["cbor", "pb", "json"] as const) {
    const [credentials] = await provisionDevices(bridge, [`fuzz-${codec}`], codec);
    const device = await connectDevice({ port: mqttPort, id: credentials.id, secret: credentials.secret, codec });
    devices.set(codec, { device, secret: credentials.secret });
  }
  const [bystander] = await provisionDevices(bridge, ["bystander"], "cbor");
  devices.set("bystander", {
    device: await connectDevice({ port: mqttPort, id: "bystander", secret: bystander.secret, codec: "cbor" }),
    secret: bystander.secret,
  });
});

after(async () => {
  for (const { device } of devices.values()) await device.end();
  await bridge?.stop();
  await sim?.close();
  process.off("unhandledRejection", onUnhandled);
  process.off("uncaughtException", onUnhandled);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** What the test knows of a fuzzed device's agent, to tell which answer a decoded frame must get. */
interface DeviceModel {
  id: string;
  codec: CodecName;
  /** The maxFrame of the last hello the agent took (null: none). */
  maxFrame: number | null;
  /** The alias table of the last hello with metrics. */
  table: readonly string[] | null;
  /** Commands queued for the device, for acks that name one. */
  commandIds: string[];
  /** Sizes of every down payload received, in order. */
  sizes: number[];
}

async function call(id: string, method: string, args: unknown[] = []): Promise<Record<string, unknown>> {
  const result = await bridge.runtime.call(id, method, args as never);
  if (!result.ok) assert.fail(`${id}.${method}: ${result.code} ${result.message}`);
  return result.value as Record<string, unknown>;
}

async function reportedVersion(id: string): Promise<number> {
  const shadow = await call(id, "getShadow");
  return (shadow.reported as { version: number }).version;
}

async function resolveEntries(model: DeviceModel, entries: readonly PlannedEntry[]): Promise<RawEntry[]> {
  const out: RawEntry[] = [];
  for (const [key, value] of entries) {
    if (value.t !== "ref") out.push([key, value]);
    else if (value.ref === "reportedVersion")
      out.push([key, { t: "int", v: BigInt((await reportedVersion(model.id)) + value.offset) }]);
    else out.push([key, { t: "text", v: model.commandIds[value.offset] ?? "no-such-command" }]);
  }
  return out;
}

type Frame = Record<string, unknown>;
/** JSON of what the device got, bigints as text, for failure messages. */
const show = (x: unknown) => JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));
const roomy = (model: DeviceModel) => model.maxFrame === null || model.maxFrame >= ROOMY_FRAME;
const errorsIn = (frames: ReturnType<typeof newFrames>) =>
  frames.filter((f) => f.channel === "error").map((f) => f.frame);
const newFrames = (device: TestDevice, mark: number) =>
  device.received.slice(mark) as Array<{ channel: string; frame: Frame }>;

/** Waits until a frame after `mark` matches, failing the property after `ms` of wall time. */
async function until(
  device: TestDevice,
  mark: number,
  match: (f: { channel: string; frame: Frame }) => boolean,
  ms = 10_000,
) {
  const deadline = Date.now() + ms;
  while (!newFrames(device, mark).some(match)) {
    if (Date.now() > deadline) assert.fail(`${device.id}: no matching frame; got ${show(newFrames(device, mark))}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Publishes one planned frame and checks the answer it must get. */
async function sendPlanned(model: DeviceModel, device: TestDevice, planned: PlannedFrame): Promise<void> {
  const { channel, codec } = planned;
  const stateBase = channel === "state" ? await reportedVersion(model.id) : 0;
  const bytes = writeRawFrame(codec, channel, await resolveEntries(model, planned.entries));
  const expected =
    bytes.length > MAX_PAYLOAD
      ? ({ ok: false, code: "BRIDGE_ERR_FRAME_TOO_LARGE" } as const)
      : decodeUpMessage(getCodec(codec), channel, bytes);
  const roomyBefore = roomy(model);
  const mark = device.received.length;
  const sizeMark = model.sizes.length;
  await device.publishRaw(
    formatUpTopic(model.id, channel, codec === model.codec ? undefined : codec),
    Buffer.from(bytes),
  );
  const got = () => newFrames(device, mark);
  const context = () =>
    `${channel} in ${codec}: ${Buffer.from(bytes).toString("hex").slice(0, 400)}; got ${show(got())}`;

  if (!expected.ok) {
    if (roomyBefore)
      assert.ok(
        errorsIn(got()).some((e) => e.code === expected.code),
        `expected ${expected.code}: ${context()}`,
      );
  } else {
    await checkDecoded(model, device, mark, expected.frame, stateBase, roomyBefore, context);
  }
  for (const error of errorsIn(got())) {
    assert.ok(DEVICE_ERROR_CODES.has(String(error.code)), `unexpected code ${String(error.code)}: ${context()}`);
    assert.equal(typeof error.msg, "string");
  }
  const limit = model.maxFrame;
  if (limit !== null)
    for (const size of model.sizes.slice(sizeMark))
      assert.ok(size <= limit, `${size} > maxFrame ${limit}: ${context()}`);
  assert.deepEqual(device.violations, [], "every down frame decodes in the device's codec, never JSON to a binary one");
  assert.deepEqual(unhandled, []);
}

async function checkDecoded(
  model: DeviceModel,
  device: TestDevice,
  mark: number,
  message: UpMessage,
  stateBase: number,
  roomyBefore: boolean,
  context: () => string,
): Promise<void> {
  const got = () => newFrames(device, mark);
  const frame = message.frame as Frame;
  const codes = () => errorsIn(got()).map((e) => e.code);
  switch (message.channel) {
    case "hello": {
      const maxFrame = frame.maxFrame;
      model.maxFrame = typeof maxFrame === "number" && maxFrame > 0 ? maxFrame : null;
      if (Array.isArray(frame.metrics) && frame.metrics.length > 0) model.table = frame.metrics as string[];
      for (const code of codes()) assert.equal(code, "BRIDGE_ERR_FRAME_TOO_LARGE", context());
      return;
    }
    case "telemetry": {
      const rv = frame.rv as unknown[] | undefined;
      const unknownAliases = rv !== undefined && (model.table === null || rv.length > model.table.length);
      if (unknownAliases && roomyBefore) assert.deepEqual(codes(), ["BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN"], context());
      else
        for (const code of codes())
          assert.ok(
            code === "BRIDGE_ERR_TELEMETRY_TOO_MANY" || code === "BRIDGE_ERR_TELEMETRY_ALIASES_UNKNOWN",
            context(),
          );
      return;
    }
    case "state": {
      if (frame.v === stateBase) {
        assert.deepEqual(codes(), [], context());
        assert.equal(await reportedVersion(model.id), stateBase + 1, context());
      } else if (roomyBefore) {
        const stale = errorsIn(got());
        assert.equal(stale.length, 1, context());
        assert.equal(stale[0].code, "BRIDGE_ERR_STALE_VERSION", context());
        assert.equal(stale[0].v, stateBase, context());
      }
      return;
    }
    case "ack":
      assert.deepEqual(codes(), [], context());
      return;
    case "rpc": {
      if (!roomyBefore) return;
      const replies = got().filter((f) => f.channel === "rpc" && f.frame.id === frame.id);
      assert.equal(replies.length, 1, context());
      const reply = replies[0].frame;
      if (!CALLABLE.has(String(frame.m)))
        assert.deepEqual(reply, { id: frame.id, ok: false, err: "BRIDGE_ERR_RPC_UNKNOWN_METHOD" }, context());
      if (frame.m === "ping") assert.equal(((reply as Frame).res as Frame | undefined)?.pong, true, context());
      return;
    }
    case "reason": {
      const id = String(frame.id);
      if (id.length > 64) {
        if (!roomyBefore) return;
        assert.deepEqual(codes(), ["BRIDGE_ERR_FRAME_INVALID"], context());
        assert.ok(
          errorsIn(got()).some((e) => e.id === id),
          context(),
        );
        return;
      }
      if (!roomyBefore) return;
      // A question runs in the background: its answer is a refusal naming it, or chunks and a final frame.
      await until(
        device,
        mark,
        (f) => f.frame.id === id && (f.channel === "error" || (f.channel === "reason" && f.frame.fin === true)),
      );
      const q = String(frame.q);
      const refusal = errorsIn(got()).find((e) => e.id === id);
      if (q.trim() === "" || q.length > 4000) assert.equal(refusal?.code, "BRIDGE_ERR_FRAME_INVALID", context());
      else if (refusal !== undefined)
        assert.match(String(refusal.code), /^BRIDGE_ERR_(REASON_BUSY|ENGINE_)/, context());
      return;
    }
  }
}

/** The device's valid frames after the fuzz: hello, telemetry by alias and name, a state report, rpc, a command. */
async function checkValidFramesWork(model: DeviceModel, device: TestDevice, run: number): Promise<void> {
  let mark = device.received.length;
  await device.send("hello", { fw: "1.0.0", codec: model.codec, metrics: ["temp", "hum"] });
  model.maxFrame = null;
  model.table = ["temp", "hum"];
  await until(device, mark, (f) => f.channel === "state" && f.frame.full === true);
  mark = device.received.length;
  await device.send("telemetry", { ts: clock.now(), rv: [run, null], r: { probe: run } });
  const version = await reportedVersion(model.id);
  await device.send("state", { v: version, s: { probe: run } });
  await device.send("rpc", { id: `ping-${run}`, m: "ping" });
  await until(device, mark, (f) => f.channel === "rpc" && f.frame.id === `ping-${run}`);
  assert.deepEqual(errorsIn(newFrames(device, mark)), [], "valid frames are not refused");
  const temp = (await bridge.runtime.call(model.id, "queryTelemetry", [{ metric: "temp", limit: 1 }])) as {
    ok: true;
    value: Array<{ value: unknown; ts: number }>;
  };
  assert.deepEqual(temp.value[0], { metric: "temp", ts: clock.now(), value: run });
  const shadow = await call(model.id, "getShadow");
  assert.deepEqual(shadow.reported, {
    version: version + 1,
    state: { ...(shadow.reported as { state: object }).state, probe: run },
  });
  await checkCommandRoundTrip(model.id, device, `post-${run}`);
  await checkReasoning(device, `q-${run}`);
}

/** An operator's command reaches the device, its ack is taken, and the command ends SUCCEEDED. */
async function checkCommandRoundTrip(id: string, device: TestDevice, name: string): Promise<string> {
  const command = await call(id, "sendCommand", [{ name }]);
  const cmd = await device.waitFor("cmd", (f: DownFrames["cmd"]) => f.id === command.id);
  await device.send("ack", { id: cmd.id, ok: true, res: { done: name } });
  const after = await call(id, "getCommand", [cmd.id]);
  assert.equal(after.state, "SUCCEEDED", show(after));
  return cmd.id;
}

/** A plain question gets its final frame; a turn the fuzz left running may refuse it as busy for a moment. */
async function checkReasoning(device: TestDevice, id: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const mark = device.received.length;
    await device.send("reason", { id, q: "how warm is it?" });
    await until(device, mark, (f) => f.frame.id === id && (f.channel === "error" || f.frame.fin === true));
    const refusal = errorsIn(newFrames(device, mark)).find((e) => e.id === id);
    if (refusal === undefined) return;
    assert.equal(refusal.code, "BRIDGE_ERR_REASON_BUSY");
    assert.ok(attempt < 100, "a turn left by the fuzz never ended");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The agent's records read back through the operator API. */
async function checkReadableOverHttp(id: string): Promise<void> {
  for (const route of ["", "/telemetry?limit=10000", "/shadow", "/commands?limit=500", "/conversation?limit=500"]) {
    const res = await api(http, "GET", `/api/devices/${id}${route}`);
    const body = await res.text();
    assert.equal(res.status, 200, `${route}: ${body}`);
    JSON.parse(body);
  }
}

/** The bystander's telemetry, rpc and commands, after each run of the fuzzed device. */
async function checkBystander(run: number): Promise<void> {
  const entry = devices.get("bystander");
  assert.ok(entry);
  const { device } = entry;
  const mark = device.received.length;
  await device.send("telemetry", { r: { beat: run } });
  await device.send("rpc", { id: `b-${run}`, m: "ping" });
  await until(device, mark, (f) => f.channel === "rpc" && f.frame.id === `b-${run}`);
  assert.deepEqual(errorsIn(newFrames(device, mark)), []);
  const beat = (await bridge.runtime.call("bystander", "queryTelemetry", [{ metric: "beat", limit: 1 }])) as {
    ok: true;
    value: Array<{ value: unknown }>;
  };
  assert.equal(beat.value[0]?.value, run);
  await checkCommandRoundTrip("bystander", device, `b-${run}`);
  assert.deepEqual(device.violations, []);
}

/** Every file of `id`'s agent passes SQLite's own integrity check. */
function checkDatabaseIntegrity(id: string): void {
  const files = fs.readdirSync(dataDir, { recursive: true, encoding: "utf8" });
  const own = files.filter((f) => path.basename(f).startsWith(id) && f.endsWith(".db"));
  assert.ok(own.length > 0, `no database of ${id} among ${files.join(", ")}`);
  for (const file of own) {
    const db = new Database(path.join(dataDir, file), { readonly: true, fileMustExist: true });
    try {
      assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
    } finally {
      db.close();
    }
  }
}

describe("adversarial frames on every up channel", () => {
  for (const codec of ["cbor", "pb", "json"] as const) {
    test(`a ${codec} device: refusals in its codec, no poisoned state, the bystander unaffected`, async () => {
      const entry = devices.get(codec);
      assert.ok(entry);
      const { device } = entry;
      const model: DeviceModel = { id: device.id, codec, maxFrame: null, table: null, commandIds: [], sizes: [] };
      device.client.on("message", (_topic, payload: Buffer) => model.sizes.push(payload.length));
      // Commands for the fuzzed acks to name: one finished, two open.
      await checkValidFramesWork(model, device, 0);
      for (const name of ["one", "two"])
        model.commandIds.push(String((await call(model.id, "sendCommand", [{ name }])).id));
      await until(device, 0, (f) => f.channel === "cmd" && f.frame.id === model.commandIds[1]);
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(plannedFrame(codec), { minLength: 1, maxLength: 8 }), async (frames) => {
          run += 1;
          for (const frame of frames) await sendPlanned(model, device, frame);
          await checkValidFramesWork(model, device, run);
          await checkBystander(run);
          await checkReadableOverHttp(model.id);
        }),
        RUNS,
      );
      assert.deepEqual(unhandled, []);
    });
  }

  test("every agent database passes SQLite's integrity check once the bridge stopped", async () => {
    // The runtime holds its databases locked while it runs.
    await bridge.stop();
    for (const id of ["fuzz-cbor", "fuzz-pb", "fuzz-json", "bystander"]) checkDatabaseIntegrity(id);
    assert.deepEqual(unhandled, []);
  });
});
