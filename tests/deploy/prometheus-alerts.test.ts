/**
 * deploy/prometheus/alerts.yml names only series a running bridge exports (scraped from a real bridge's /metrics), or
 * the two that Prometheus and the blackbox exporter make themselves, and every rule is complete.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Bridge } from "../../app/bridge.ts";
import { tempDir } from "../agents/helpers.ts";
import { createLoopbackBridge } from "../support/in-process-bridge.ts";
import { exportedSeriesNames, metricNamesIn } from "./support/promql-metrics.ts";
import { REPO_ROOT } from "./support/runtime-import-graph.ts";
import { parseYamlSubset, type YamlValue } from "./support/yaml-subset.ts";

const TOKEN = "alerts-test-token-0123456789";

/** Series the alerts read that are not the bridge's: each says who makes it. */
const NOT_THE_BRIDGES = new Map([
  ["up", "Prometheus, for every scrape target"],
  ["probe_success", "the blackbox exporter, probing /readyz and /readyz/engine"],
]);

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

function asMap(value: YamlValue | undefined, what: string): Record<string, YamlValue> {
  assert.ok(value !== undefined && typeof value === "object" && !Array.isArray(value), `${what} is a mapping`);
  return value;
}

function asList(value: YamlValue | undefined, what: string): YamlValue[] {
  assert.ok(Array.isArray(value), `${what} is a list`);
  return value;
}

function asStrings(value: YamlValue | undefined, what: string): Record<string, string> {
  const map = asMap(value, what);
  for (const [key, entry] of Object.entries(map)) assert.equal(typeof entry, "string", `${what}.${key}`);
  return map as Record<string, string>;
}

/** The alerting rules of every group, checked for the keys Prometheus needs. */
function alertRules(text: string): AlertRule[] {
  const rules: AlertRule[] = [];
  for (const group of asList(parseYamlSubset(text).groups, "groups")) {
    const { name, rules: groupRules, ...other } = asMap(group, "a group");
    assert.equal(typeof name, "string", "a group's name");
    assert.deepEqual(Object.keys(other), [], `group ${name}: unknown keys`);
    for (const item of asList(groupRules, `group ${name}'s rules`)) {
      const rule = asMap(item, "a rule");
      const { alert, expr, for: duration, labels, annotations, ...rest } = rule;
      assert.deepEqual(Object.keys(rest), [], `rule ${alert}: unknown keys`);
      assert.ok(typeof alert === "string" && typeof expr === "string", "a rule's alert and expr");
      assert.ok(duration === undefined || (typeof duration === "string" && /^\d+[smh]$/.test(duration)), alert);
      rules.push({
        alert,
        expr,
        ...(duration === undefined ? {} : { for: duration }),
        labels: asStrings(labels, `${alert}.labels`),
        annotations: asStrings(annotations, `${alert}.annotations`),
      });
    }
  }
  return rules;
}

describe("the Prometheus alerting rules", () => {
  const data = tempDir("alerts-metrics-");
  let bridge: Bridge;
  let exported: Set<string>;
  const rules = alertRules(fs.readFileSync(path.join(REPO_ROOT, "deploy/prometheus/alerts.yml"), "utf8"));

  before(async () => {
    bridge = await createLoopbackBridge({ dataDir: data.dir, apiToken: TOKEN });
    const addresses = await bridge.start();
    assert.ok(addresses.http !== undefined);
    const answer = await fetch(`http://127.0.0.1:${addresses.http.port}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(answer.status, 200);
    exported = exportedSeriesNames(await answer.text());
  });

  after(async () => {
    await bridge?.stop();
    data.remove();
  });

  test("every rule names only series the bridge exports, or Prometheus and the blackbox exporter make", () => {
    assert.ok(exported.has("bridge_limit_breaches_total") && exported.has("process_open_fds"), "the scrape parsed");
    const unknown: string[] = [];
    for (const rule of rules) {
      const names = metricNamesIn(rule.expr);
      assert.ok(names.length > 0, `${rule.alert} selects a series`);
      for (const name of names) {
        if (!exported.has(name) && !NOT_THE_BRIDGES.has(name)) unknown.push(`${rule.alert}: ${name}`);
      }
    }
    assert.deepEqual(unknown, []);
  });

  test("the rules cover the conditions an operator must hear of", () => {
    const selected = new Set(rules.flatMap((rule) => metricNamesIn(rule.expr)));
    for (const name of [
      "up",
      "probe_success",
      "bridge_engine_replica_healthy",
      "bridge_limit_breaches_total",
      "bridge_auth_failures_total",
      "nodejs_eventloop_lag_p99_seconds",
      "bridge_errors_total",
      "bridge_directory_agents_waiting",
    ]) {
      assert.ok(selected.has(name), `a rule reads ${name}`);
    }
  });

  test("every rule has a unique name, a severity and a summary", () => {
    const names = rules.map((rule) => rule.alert);
    assert.equal(new Set(names).size, names.length, "alert names are unique");
    for (const rule of rules) {
      assert.match(rule.labels.severity ?? "", /^(critical|warning|info)$/, `${rule.alert}: severity`);
      assert.ok((rule.annotations.summary ?? "") !== "", `${rule.alert}: summary`);
      assert.ok((rule.annotations.description ?? "") !== "", `${rule.alert}: description`);
    }
  });
});

describe("the checks the rules test relies on", () => {
  test("metricNamesIn finds the series and skips functions, labels, ranges and keywords", () => {
    assert.deepEqual(
      metricNamesIn(
        'histogram_quantile(0.99, sum by (job, le) (rate(a_seconds_bucket{code=~"x|y", job="j"}[5m] offset 1h)))' +
          " > 0.25 and on (instance) b_total / ignoring(code) c unless bool_thing > bool 1e3",
      ),
      ["a_seconds_bucket", "b_total", "c", "bool_thing"],
    );
  });

  test("exportedSeriesNames lists a histogram's parts", () => {
    const names = exportedSeriesNames("# HELP h x\n# TYPE h histogram\n# TYPE g gauge\ng 1\n");
    assert.deepEqual([...names].sort(), ["g", "h", "h_bucket", "h_count", "h_sum"]);
  });

  test("parseYamlSubset reads nested mappings and lists, and refuses what it does not know", () => {
    assert.deepEqual(parseYamlSubset('a:\n  - b: "x: y"\n    c:\n      d: e\n  - b: f\n'), {
      a: [{ b: "x: y", c: { d: "e" } }, { b: "f" }],
    });
    assert.throws(() => parseYamlSubset("a: b: c\n"), /line 1: quote this value/);
    assert.throws(() => parseYamlSubset("a: x #y\n"), /line 1: quote this value/);
    assert.throws(() => parseYamlSubset("a: |\n  x\n"), /line 1/);
    assert.deepEqual(parseYamlSubset("k:\n  - a: >-\n      x: y\n      # z\n    b: c\n"), {
      k: [{ a: "x: y # z", b: "c" }],
    });
    assert.throws(() => parseYamlSubset("a: >-\n  x\n    y\n"), /line 3: a folded line indented apart/);
    assert.throws(() => parseYamlSubset("a: >-\nb: c\n"), /line 1: a has no value/);
    assert.throws(() => parseYamlSubset("a:\nb: c\n"), /line 1: a has no value/);
    assert.throws(() => parseYamlSubset("a: 1\na: 2\n"), /line 2: a given twice/);
    assert.throws(() => parseYamlSubset("a:\n  b: 1\n c: 2\n"), /line 3: unexpected indentation/);
  });
});
