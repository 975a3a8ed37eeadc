// The fleet overview: KPI cards, live charts, pending approvals and the device table.
import { api, enc } from "../api.js";
import { lineChart } from "../charts.js";
import { agentClassText, ago, empty, errorBox, h, readingsLine, replace } from "../dom.js";
import { renderApprovals } from "./approvals.js";

const $ = (id) => document.getElementById(id);
/** Rows drawn at most; more devices are reached with the id filter. */
const TABLE_ROWS = 500;

/** Loads everything the fleet view shows and renders it. Rejects with ApiError on failure. */
export async function refreshFleet() {
  const filter = $("fleet-filter").value.trim();
  // A large fleet is shown a page at a time; the filter runs on the server over every device.
  const query = `limit=${TABLE_ROWS}${filter === "" ? "" : `&q=${enc(filter)}`}`;
  const [fleet, devices, approvals] = await Promise.all([
    api("GET", "/api/fleet"),
    api("GET", `/api/devices?${query}`),
    api("GET", "/api/approvals"),
  ]);
  renderKpis(fleet);
  renderCharts(fleet);
  renderApprovals($("approvals"), approvals.approvals, () => refreshFleet().catch(() => {}), fleet.serverTime);
  renderTable(devices, fleet, filter);
  return fleet;
}

function renderKpis(fleet) {
  $("kpi-online").textContent = `${fleet.devices.online} / ${fleet.devices.registered}`;
  $("kpi-in").textContent = fleet.rates ? fleet.rates.inPerSecond.toFixed(1) : "–";
  $("kpi-out").textContent = fleet.rates ? fleet.rates.outPerSecond.toFixed(1) : "–";
  $("kpi-agents").textContent = `${fleet.agents.active} / ${fleet.agents.hibernated}`;
  $("kpi-approvals").textContent = String(fleet.approvalsPending);
  $("kpi-engine").textContent = engineLabel(fleet.engine);
}

function engineLabel(engine) {
  if (!engine.configured) return "not configured";
  // engine-client health(): { status: "ok" | "degraded" | "down", replicas }; a failed probe: { healthy: false, error }.
  const status = engine.health?.status ?? (engine.health?.healthy === false ? "down" : "unknown");
  const ttft = engine.activity?.ttftMsMean;
  const state = status === "ok" ? "healthy" : status;
  return ttft === null || ttft === undefined ? state : `${state} · TTFT ${Math.round(ttft)} ms`;
}

function renderCharts(fleet) {
  const history = fleet.rates?.history ?? [];
  const busy = history.some((p) => p.in > 0 || p.out > 0);
  // Every fleet chart spans the same minute so they can be read side by side.
  const xRange = history.length > 0 ? [history[0].t, history[history.length - 1].t] : undefined;
  lineChart(
    $("chart-rates"),
    busy
      ? [
          { name: "in", points: history.map((p) => ({ t: p.t, v: p.in })) },
          { name: "out", points: history.map((p) => ({ t: p.t, v: p.out })) },
        ]
      : [],
    { emptyText: "No messages in the last minute", minY: 0, xRange },
  );
  const tokens = history.some((p) => p.tokens > 0);
  const idle = fleet.engine.configured ? "No engine traffic in the last minute" : "No engine configured";
  lineChart(
    $("chart-engine"),
    tokens ? [{ name: "completion tokens", points: history.map((p) => ({ t: p.t, v: p.tokens })) }] : [],
    { emptyText: idle, minY: 0, xRange },
  );
  // Seconds without a request have no TTFT: they are left out rather than drawn as zero.
  const ttft = history.filter((p) => p.ttftMs !== null && p.ttftMs !== undefined).map((p) => ({ t: p.t, v: p.ttftMs }));
  lineChart($("chart-ttft"), ttft.length > 0 ? [{ name: "TTFT ms", points: ttft, color: "#d97706" }] : [], {
    emptyText: idle,
    minY: 0,
    xRange,
  });
}

function renderTable(page, fleet, filter) {
  const devices = page.devices;
  const now = fleet.serverTime;
  if (fleet.devices.registered === 0) {
    replace(
      $("fleet"),
      empty("No devices yet. Provision one with `agent-bridge devices add <id>` or POST /api/devices."),
    );
    return;
  }
  if (devices.length === 0) {
    replace($("fleet"), empty(`No device id contains “${filter}”.`));
    return;
  }
  const matched = page.matched ?? fleet.devices.registered;
  const note =
    matched > devices.length
      ? h("p", { class: "muted" }, `Showing ${devices.length} of ${matched} devices; filter by id to find others.`)
      : null;
  const rows = devices.map((d) =>
    h(
      "tr",
      { dataset: { device: d.id } },
      h("td", {}, h("a", { href: `#/device/${enc(d.id)}` }, d.id)),
      h("td", {}, h("span", { class: d.online ? "pill pill-ok" : "pill pill-muted" }, d.online ? "online" : "offline")),
      h("td", {}, ago(d.lastSeenAt, now)),
      h("td", { class: "mono" }, d.lastTelemetry ? readingsLine(d.lastTelemetry.readings) : "–"),
      h("td", {}, d.codec ?? "default"),
      h("td", {}, d.firmware ?? "–"),
      h("td", { class: d.agentClassFallback ? "class-fallback" : undefined }, agentClassText(d)),
    ),
  );
  replace(
    $("fleet"),
    h(
      "table",
      { class: "table", id: "fleet-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Device", "Status", "Last seen", "Last telemetry", "Codec", "Firmware", "Agent"].map((c) =>
            h("th", { scope: "col" }, c),
          ),
        ),
      ),
      h("tbody", {}, rows),
    ),
    note,
  );
}

export function fleetError(err) {
  replace($("fleet"), errorBox(err));
}
