/**
 * createFleet: builds the simulated devices, powers them on along the connection ramp, and at stop drains, checks
 * the invariants and reports.
 */
import { EventEmitter } from "node:events";
import { BridgeError } from "../../errors/index.ts";
import { CommandBook } from "../device/command-book.ts";
import type { DeviceBehaviour, DeviceEnv } from "../device/device-env.ts";
import type { DeviceRandom } from "../random-streams.ts";
import { VirtualDevice } from "../device/virtual-device.ts";
import { SimErrorCode } from "../errors.ts";
import type { AckedCommand } from "../invariants/command-check.ts";
import { type Violation, ViolationLog } from "../invariants/violations.ts";
import { getProfile } from "../profiles/index.ts";
import { type ScheduledTask, TickScheduler } from "../scheduler.ts";
import { FleetMetrics, type FleetStats } from "../stats.ts";
import { type ApiDriver, type ApiDriveTarget, startApiDriver } from "./api-driver.ts";
import { localAddressPicker, planLocalAddresses } from "./local-addresses.ts";
import { type FleetOptions, resolveFleetOptions } from "./options.ts";
import type { CommandCheckResult, FleetReport, TelemetryCheckResult } from "./report.ts";
import { SimulatorErrorLog, type SimulatorErrorSummary } from "./simulator-errors.ts";
import { verdictReasons } from "./verdict.ts";
import { toCommandVerifier, toVerifier, verifyCommands, verifyTelemetry } from "./verify-run.ts";

/** Events of a running fleet. */
export interface FleetEvents {
  /** A device completed connect, subscribe and hello. */
  online: [deviceId: string];
  /** An online device lost its connection. */
  offline: [deviceId: string, reason: string];
  /** An invariant broke (also counted in the final report). */
  violation: [violation: Violation];
  /** The first simulator error of its kind: a device task or handler threw (a bug of the simulator, not the bridge). */
  simulatorError: [error: SimulatorErrorSummary];
  /** stop() finished. */
  finished: [report: FleetReport];
}

/** A simulated fleet. */
export interface Fleet {
  readonly events: EventEmitter<FleetEvents>;
  /** Device ids, in power-on order. */
  readonly deviceIds: readonly string[];
  /** Starts the connection ramp; resolves once every device is powered on (not necessarily connected). */
  start(): Promise<void>;
  /**
   * Resolves true once `count` devices (default all) are online at the same time (subscribed and hello acknowledged,
   * as the `online` event); false after `timeoutMs`, or as soon as `stop()` begins (even if called after it).
   */
  whenOnline(count?: number, timeoutMs?: number): Promise<boolean>;
  /** Stops producing, drains, checks the invariants, disconnects and reports. Idempotent. */
  stop(): Promise<FleetReport>;
  /** start(), wait `durationMs`, stop(). */
  run(durationMs: number): Promise<FleetReport>;
  /** Counters and latencies so far. */
  stats(): FleetStats;
}

/**
 * Creates a fleet of simulated devices pointing at an MQTT broker. Options are validated here
 * (BRIDGE_ERR_SIM_OPTIONS naming the field); nothing connects before `start()`.
 *
 * @example
 * const fleet = createFleet({ url: "mqtt://127.0.0.1:1883", devices: 100, profile: "thermostat", rate: 2 });
 * const report = await fleet.run(30_000);
 * if (!report.ok) console.error(report.violationDetails);
 */
export function createFleet(options: FleetOptions): Fleet {
  const o = resolveFleetOptions(options);
  const { clock, random } = o;
  const events = new EventEmitter<FleetEvents>();
  const metrics = new FleetMetrics();
  const violations = new ViolationLog(o.maxViolationDetails);
  violations.onViolation((v) => events.emit("violation", v));
  const simulatorErrors = new SimulatorErrorLog((summary) => events.emit("simulatorError", summary));
  const simulatorError = (err: unknown, deviceId: string | undefined) => {
    metrics.counters.simulatorErrors++;
    simulatorErrors.record(err, deviceId, clock.now());
  };
  // A task that throws is a bug of the simulator: counted and reported, while every other task goes on.
  const scheduler = new TickScheduler(clock, { onTaskError: (err, task) => simulatorError(err, task.owner) });
  const behaviour: DeviceBehaviour = {
    telemetryIntervalMs: o.rate > 0 ? 1000 / o.rate : 0,
    backoff: o.backoff,
    offlineBufferSize: o.offlineBufferSize,
    maxInflight: o.maxInflight,
    cleanSession: o.cleanSession,
    brokerSetsDup: o.brokerSetsDup,
    keepaliveSec: o.keepaliveSec,
    connectTimeoutMs: o.connectTimeoutMs,
    duplicateRatio: o.duplicateRatio,
    networkDropMeanMs: o.networkDropMeanMs,
    lastWillTopic: o.lastWillTopic,
    reasonIntervalMs: o.reasonIntervalMs,
    reasonTimeoutMs: o.reasonTimeoutMs,
    reasonMaxTokens: o.reasonMaxTokens,
  };
  const addresses = planLocalAddresses(o.target.host, o.devices + o.takeoverPairs, o.localAddresses);
  const listener = {
    online: (id: string) => events.emit("online", id),
    offline: (id: string, reason: string) => events.emit("offline", id, reason),
  };
  const envFor = (index: number, deviceId: string, deviceRandom: DeviceRandom): DeviceEnv => ({
    clock,
    scheduler: scheduler.forOwner(deviceId),
    random: deviceRandom,
    metrics,
    violations,
    behaviour,
    target: { ...o.target, tlsOptions: o.tls },
    socketFactory: o.socketFactory,
    localAddress: localAddressPicker(addresses, index),
    listener,
    handlerFailed: (err) => simulatorError(err, deviceId),
  });

  // seq readings are unique per run (a random nonce in the high bits) and per device instance (twins use bit 31),
  // so telemetry stored by earlier runs or by the twin can never satisfy this run's check.
  const runBase = Math.floor(random.fleet() * 2 ** 20) * 2 ** 32;
  const width = String(o.devices).length;
  const devices: VirtualDevice[] = [];
  const twins: VirtualDevice[] = [];
  const driveTargets: ApiDriveTarget[] = [];
  for (let i = 0; i < o.devices; i++) {
    const credential = o.credentials?.[i];
    const id = credential?.id ?? `${o.idPrefix}${String(i + 1).padStart(width, "0")}`;
    const profile = getProfile(o.profiles[i % o.profiles.length]);
    const codec = profile.binaryOnly && o.codec === "json" ? "cbor" : o.codec;
    const secret = credential?.secret ?? o.secret;
    const deviceRandom = random.device(i);
    const skewMs = o.clockSkewMs === 0 ? 0 : Math.round((deviceRandom.setup() * 2 - 1) * o.clockSkewMs);
    const hasClock = o.noClockRatio === 0 || deviceRandom.setup() >= o.noClockRatio;
    const commands = new CommandBook(o.brokerSetsDup);
    const base = { id, secret, codec, skewMs, hasClock, commands };
    const device = new VirtualDevice({ ...base, profile, seqBase: runBase, twin: false }, envFor(i, id, deviceRandom));
    devices.push(device);
    driveTargets.push({
      deviceId: id,
      hasShadow: profile.hasShadow,
      online: () => device.phase === "online",
      random: deviceRandom.operator,
    });
    if (i < o.takeoverPairs) {
      // The twin runs sensor firmware: two shadows fighting over one reported state would test the twins, not the bridge.
      const twinBase = { ...base, profile: getProfile("sensor"), seqBase: runBase + 2 ** 31, twin: true };
      twins.push(new VirtualDevice(twinBase, envFor(o.devices + i, id, random.device(o.devices + i))));
    }
  }
  const all = [...devices, ...twins];

  let state: "new" | "running" | "stopping" | "stopped" = "new";
  let startedMs = 0;
  let stoppedProducingMs = 0;
  /** PUBACKs received by the end of the active time: the drain's later ones would inflate the rate over it. */
  let ackedWhileActive = 0;
  let powered = 0;
  let undelivered = 0;
  const rampTasks: ScheduledTask[] = [];
  let stopPromise: Promise<FleetReport> | undefined;
  let driver: ApiDriver | undefined;

  const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimer(resolve, ms));
  // Resolved when stop() begins, so run() does not keep waiting out its duration after an early stop.
  let signalStop: () => void = () => {};
  const stopRequested = new Promise<void>((resolve) => {
    signalStop = resolve;
  });
  const sleepUnlessStopped = async (ms: number) => {
    let cancel = () => {};
    await Promise.race([new Promise<void>((resolve) => (cancel = clock.setTimer(resolve, ms))), stopRequested]);
    cancel();
  };
  /**
   * Polls `predicate` every 20 ms until it holds (true) or `timeoutMs` passes (false). `endsWithStop`, for callers
   * outside the fleet (whenOnline): false as soon as stop() begins, its poll timer with it, since a stopping fleet
   * brings no device online any more and the wait would keep the process alive until its timeout.
   */
  const waitFor = async (predicate: () => boolean, timeoutMs: number, endsWithStop = false): Promise<boolean> => {
    const deadline = clock.now() + timeoutMs;
    while (!predicate()) {
      if ((endsWithStop && stopPromise !== undefined) || clock.now() >= deadline) return false;
      const ms = Math.min(20, Math.max(1, deadline - clock.now()));
      await (endsWithStop ? sleepUnlessStopped(ms) : sleep(ms));
    }
    return true;
  };

  const stats = (): FleetStats => ({
    elapsedMs: state === "new" ? 0 : clock.now() - startedMs,
    devices: o.devices,
    started: powered,
    online: metrics.online,
    counters: { ...metrics.counters },
    pubackLatency: metrics.pubackLatency.summary(),
    reasonFirstChunk: metrics.reasonFirstChunk.summary(),
    reasonTotal: metrics.reasonTotal.summary(),
    errorCodes: Object.fromEntries(metrics.errorCodes),
    refusalCodes: Object.fromEntries(metrics.refusalCodes),
    violations: violations.total,
  });

  const start = (): Promise<void> => {
    if (state !== "new") {
      return Promise.reject(
        new BridgeError(SimErrorCode.state, `start() called on a fleet that is ${state}`, { state }),
      );
    }
    state = "running";
    startedMs = clock.now();
    if (o.driveApi !== undefined) {
      driver = startApiDriver(o.driveApi, driveTargets, scheduler, random.fleet, (kind, deviceId, message) =>
        violations.add({ kind, deviceId, message, atMs: clock.now() }),
      );
    }
    const spacingMs = 1000 / o.connectRatePerSec;
    return new Promise<void>((resolve) => {
      if (all.length === 0) resolve();
      const powerOn = (device: VirtualDevice) => {
        if (state !== "running") return;
        device.powerOn();
        powered++;
        if (powered === all.length) resolve();
      };
      devices.forEach((device, i) => {
        rampTasks.push(scheduler.after(i * spacingMs, () => powerOn(device)));
      });
      twins.forEach((twin, i) => {
        rampTasks.push(scheduler.after(i * spacingMs + o.takeoverDelayMs, () => powerOn(twin)));
      });
      // stop() during the ramp resolves start() too.
      events.once("finished", () => resolve());
    });
  };

  const stop = (): Promise<FleetReport> => {
    signalStop();
    stopPromise ??= (async () => {
      const wasRunning = state === "running";
      if (state === "new") startedMs = clock.now();
      state = "stopping";
      for (const task of rampTasks) scheduler.cancel(task);
      // Requests already made finish first, so the commands and deltas they create are delivered during the drain.
      await driver?.stop();
      stoppedProducingMs = clock.now();
      ackedWhileActive = metrics.counters.acked;
      for (const device of all) device.stopProducing();
      // Only devices that were online before: one refused from the start would just be refused again.
      if (wasRunning) for (const device of all) if (device.everOnline && !device.drained) device.reconnectNow();
      const poweredDevices = all.filter((d) => d.phase !== "off");
      if (wasRunning) {
        // What a device owes drains only through a connection. Once none is open or being attempted, nor coming back
        // (the broker was never reached, or it went away and the reconnects failed), nothing more can drain or arrive:
        // the stop does not wait out drainTimeoutMs and the settle for it. A device that lost a connection that had
        // come online (a drop during the drain) connects again after its backoff, so the wait goes on for it, as it
        // does while some connection is open.
        const anyConnection = () => poweredDevices.some((d) => d.connectionOpen || d.reconnectingAfterLoss);
        const drainOver = () => poweredDevices.every((d) => d.drained) || !anyConnection();
        await waitFor(drainOver, o.drainTimeoutMs);
        if (anyConnection()) await sleep(o.settleMs);
        await waitFor(drainOver, o.drainTimeoutMs);
      }
      for (const device of poweredDevices) device.finalChecks();
      undelivered = poweredDevices.reduce((sum, d) => sum + d.pending, 0);
      for (const device of all) device.shutdown();
      // The broker closes each connection once it has read the DISCONNECT; what it leaves open is closed from here.
      await waitFor(() => all.every((d) => !d.connectionOpen), 2000);
      for (const device of all) device.closeNow();
      // A destroyed socket reports its close on a later turn; the report counts it.
      await waitFor(() => all.every((d) => !d.connectionOpen), 1000);
      scheduler.close();
      const telemetryCheck = await checkTelemetry(poweredDevices);
      const commandCheck = await checkCommands(poweredDevices);
      await driver?.checkConvergence();
      state = "stopped";
      const report = buildReport(telemetryCheck, commandCheck);
      events.emit("finished", report);
      return report;
    })();
    return stopPromise;
  };

  const checkTelemetry = async (powered: readonly VirtualDevice[]): Promise<TelemetryCheckResult> => {
    const verifier = toVerifier(o.verifyTelemetry);
    if (!verifier) return { status: "skipped", reason: "no verifyTelemetry hook or API URL given" };
    const acked = new Map<string, number[]>();
    for (const device of powered) {
      const list = acked.get(device.deviceId) ?? [];
      for (const seq of device.ackedSeqs.values()) list.push(seq);
      acked.set(device.deviceId, list);
    }
    for (const list of acked.values()) list.sort((a, b) => a - b);
    return verifyTelemetry(verifier, acked, o.verifyConcurrency, (v) => violations.add({ ...v, atMs: clock.now() }));
  };

  const checkCommands = async (powered: readonly VirtualDevice[]): Promise<CommandCheckResult> => {
    const verifier = toCommandVerifier(o.verifyCommands);
    if (!verifier) return { status: "skipped", reason: "no verifyCommands hook or API URL given" };
    // Twins share their original's command book: one entry per device id.
    const acked = new Map<string, AckedCommand[]>();
    for (const device of powered) if (!device.isTwin) acked.set(device.deviceId, device.commands.confirmed());
    return verifyCommands(verifier, acked, o.verifyConcurrency, (v) => violations.add({ ...v, atMs: clock.now() }));
  };

  const buildReport = (telemetryCheck: TelemetryCheckResult, commandCheck: CommandCheckResult): FleetReport => {
    const s = stats();
    const activeMs = Math.max(1, stoppedProducingMs - startedMs);
    const reasons = verdictReasons({
      devices: all.length,
      powered,
      everOnline: all.filter((d) => d.everOnline).length,
      violations: violations.total,
      simulatorErrors: s.counters.simulatorErrors,
    });
    return {
      ok: reasons.length === 0,
      reasons,
      violations: violations.total,
      violationCounts: violations.counts(),
      violationDetails: violations.details(),
      simulatorErrors: simulatorErrors.summaries(),
      telemetryCheck,
      commandCheck,
      durationMs: clock.now() - startedMs,
      activeMs,
      undelivered,
      ackedPerSec: Math.round((ackedWhileActive / activeMs) * 1000 * 10) / 10,
      pubackLatency: s.pubackLatency,
      stats: s,
      ...(driver === undefined ? {} : { apiDrive: driver.result() }),
    };
  };

  return {
    events,
    deviceIds: devices.map((d) => d.deviceId),
    start,
    whenOnline: (count = o.devices, timeoutMs = 30_000) => waitFor(() => metrics.online >= count, timeoutMs, true),
    stop,
    async run(durationMs) {
      // A timer takes NaN as 1 ms and a negative delay as 0: a bad duration would end the run at once, unannounced.
      if (typeof durationMs !== "number" || !Number.isFinite(durationMs) || durationMs < 0) {
        throw new BridgeError(
          SimErrorCode.options,
          `durationMs must be a finite number of 0 or more, got ${durationMs}`,
          {
            field: "durationMs",
          },
        );
      }
      // Devices power on along the ramp during the run; the duration counts from start(), not from the ramp's end.
      if (state === "new") void start();
      await sleepUnlessStopped(durationMs);
      return stop();
    },
    stats,
  };
}
