/**
 * The agent runtime's series in the bridge's metrics (metrics.ts): counters and histograms its observer hooks feed,
 * and gauges read from its stats at scrape time. Series names are listed in docs/api.md.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { RuntimeObserver } from "../../agents/types.ts";
import { BatchedCounter } from "./batched-counter.ts";

/** The runtime's counts the gauges read at scrape time (`AgentRuntime.stats()`). */
export interface RuntimeStats {
  active: number;
  hibernated: number;
  mailboxDepth: number;
  commits: number;
}

const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * Registers the runtime's series in `registry` and returns the observer that feeds them; `stats` is read at each
 * scrape (undefined while no runtime is set).
 */
export function runtimeMetrics(registry: Registry, stats: () => RuntimeStats | undefined): RuntimeObserver {
  const reg = [registry];
  const errors = new Counter({
    name: "bridge_errors_total",
    help: "Agent event and hook failures, by error code",
    labelNames: ["code"],
    registers: reg,
  });
  // The per-commit and per-event counters add plain numbers and reach prom-client at scrape time (batched-counter.ts).
  const commits = new BatchedCounter({ name: "bridge_commits_total", help: "Agent group commits", registers: reg });
  const commitEvents = new BatchedCounter({
    name: "bridge_committed_events_total",
    help: "Events written by agent group commits",
    registers: reg,
  });
  const commitSeconds = new Histogram({
    name: "bridge_commit_duration_seconds",
    help: "Duration of one agent group commit",
    buckets: LATENCY_BUCKETS_S,
    registers: reg,
  });
  const events = new BatchedCounter({
    name: "bridge_agent_events_total",
    help: "Agent events run, by kind and outcome",
    labelNames: ["kind", "status"],
    registers: reg,
  });
  const mailboxFull = new Counter({
    name: "bridge_mailbox_full_total",
    help: "Events refused because an agent mailbox was full (the sender was slowed)",
    registers: reg,
  });
  const wakeSeconds = new Histogram({
    name: "bridge_agent_wake_duration_seconds",
    help: "Time to load a hibernated agent into memory",
    buckets: LATENCY_BUCKETS_S,
    registers: reg,
  });
  const hibernations = new Counter({
    name: "bridge_agent_hibernations_total",
    help: "Agents that left memory, by reason",
    labelNames: ["reason"],
    registers: reg,
  });
  const directoryRefused = new Counter({
    name: "bridge_directory_writes_refused_total",
    help: "Fleet directory index writes runtime.db refused (a storage fault), retries included",
    registers: reg,
  });
  const directoryWaiting = new Gauge({
    name: "bridge_directory_agents_waiting",
    help: "Agents whose fleet directory entries wait to be written again to the index runtime.db refused them to",
    registers: reg,
  });
  // One gauge per runtime count, read from the runtime's stats at scrape time so it never lags the runtime.
  const runtimeGauges = [
    { name: "bridge_agents_active", help: "Agents in memory", stat: "active" },
    { name: "bridge_agents_hibernated", help: "Agents on disk only", stat: "hibernated" },
    { name: "bridge_mailbox_depth", help: "Events waiting in all agent mailboxes", stat: "mailboxDepth" },
  ] as const;
  for (const { name, help, stat } of runtimeGauges) {
    new Gauge({
      name,
      help,
      registers: reg,
      collect() {
        const s = stats();
        if (s !== undefined) this.set(s[stat]);
      },
    });
  }

  return {
    onCommit(info) {
      commits.inc();
      commitEvents.inc("", "", info.events);
      commitSeconds.observe(info.durationMs / 1000);
    },
    onEvent(info) {
      events.inc(info.kind, info.status);
    },
    onError(info) {
      errors.inc({ code: info.code });
    },
    onMailboxFull() {
      mailboxFull.inc();
    },
    onWake(info) {
      wakeSeconds.observe(info.durationMs / 1000);
    },
    onHibernate(info) {
      hibernations.inc({ reason: info.reason });
    },
    onDirectoryWriteRefused(info) {
      directoryRefused.inc();
      directoryWaiting.set(info.waiting);
    },
    onDirectoryWaitEnded(info) {
      directoryWaiting.set(info.waiting);
    },
  };
}
