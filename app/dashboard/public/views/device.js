// One device: status, shadow with versions (and a desired-state editor), telemetry chart, commands, approvals
// and the reasoning conversation. The skeleton is built once per device so forms keep their input across refreshes.
import { api, enc } from "../api.js";
import { lineChart } from "../charts.js";
import { agentClassText, ago, empty, errorBox, h, json, replace, time } from "../dom.js";
import { renderApprovals } from "./approvals.js";

// { id, els, shadow, metric, serverTime }: serverTime, from the device's answer, is what ages and days are measured
// against, as in the fleet table (dom.js `ago`).
let current = null;

export function mountDevice(container, id) {
  if (current?.id === id && container.firstChild) return;
  const els = {
    head: h("div", { class: "device-head" }),
    shadow: h("div", { id: "shadow" }),
    desiredInput: h(
      "textarea",
      { id: "desired-input", rows: 4, spellcheck: "false", "aria-label": "Desired state patch (JSON)" },
      "{\n  \n}",
    ),
    desiredMsg: h("p", { id: "desired-msg", role: "status" }),
    metric: h("select", { id: "metric", "aria-label": "Metric" }),
    chart: h("canvas", { id: "chart-telemetry", height: 200 }),
    readings: h("div", { id: "readings", class: "table-wrap" }),
    commands: h("div", { id: "commands", class: "table-wrap" }),
    cmdName: h("input", {
      id: "cmd-name",
      placeholder: "name, e.g. reboot",
      required: true,
      maxlength: 64,
      "aria-label": "Command name",
    }),
    cmdArgs: h("input", {
      id: "cmd-args",
      placeholder: 'args JSON, e.g. {"delay":5}',
      "aria-label": "Command arguments (JSON)",
    }),
    cmdMsg: h("p", { id: "cmd-msg", role: "status" }),
    approvals: h("div", { id: "device-approvals" }),
    conversation: h("div", { id: "conversation" }),
  };
  current = { id, els, shadow: null, metric: "", serverTime: undefined };
  const desiredForm = h(
    "form",
    { id: "desired-form", class: "stack" },
    els.desiredInput,
    h("div", { class: "row" }, h("button", { class: "btn", type: "submit" }, "Set desired"), els.desiredMsg),
  );
  desiredForm.addEventListener("submit", (e) => {
    e.preventDefault();
    setDesired(id).catch(() => {});
  });
  const cmdForm = h(
    "form",
    { id: "cmd-form", class: "row wrap" },
    els.cmdName,
    els.cmdArgs,
    h("button", { class: "btn", type: "submit" }, "Send command"),
    els.cmdMsg,
  );
  cmdForm.addEventListener("submit", (e) => {
    e.preventDefault();
    sendCommand(id).catch(() => {});
  });
  els.metric.addEventListener("change", () => {
    current.metric = els.metric.value;
    refreshTelemetry(id).catch((err) => replace(els.readings, errorBox(err)));
  });
  const deleteBtn = h("button", { class: "btn btn-danger", type: "button", id: "delete-device" }, "Delete device");
  deleteBtn.addEventListener("click", async () => {
    if (!window.confirm(`Delete ${id}? Its secret stops working and its stored data is removed.`)) return;
    deleteBtn.disabled = true;
    try {
      await api("DELETE", `/api/devices/${enc(id)}`);
      location.hash = "#/";
    } catch (err) {
      deleteBtn.disabled = false;
      replace(els.head, errorBox(err));
    }
  });
  replace(
    container,
    h("div", { class: "row" }, h("a", { href: "#/" }, "← Fleet"), h("span", { class: "spacer" }), deleteBtn),
    els.head,
    h(
      "div",
      { class: "grid2" },
      h(
        "section",
        { class: "panel" },
        h("h2", {}, "Shadow"),
        els.shadow,
        h("h3", {}, "Change desired state"),
        desiredForm,
      ),
      h(
        "section",
        { class: "panel" },
        h("div", { class: "row" }, h("h2", {}, "Telemetry"), h("span", { class: "spacer" }), els.metric),
        els.chart,
        els.readings,
      ),
      h("section", { class: "panel" }, h("h2", {}, "Commands"), cmdForm, els.commands),
      h("section", { class: "panel" }, h("h2", {}, "Pending approvals"), els.approvals),
      h("section", { class: "panel span2" }, h("h2", {}, "Conversation"), els.conversation),
    ),
  );
}

/** Reloads every part of the device view. */
export async function refreshDevice(id) {
  // The view this refresh is for: the operator may open another device (or view) while it is in flight, and its
  // answers must not be drawn into, or change the state of, the view that replaced it.
  const view = current;
  if (view === null) return;
  const { els } = view;
  const [device, shadow, commands, conversation, approvals] = await Promise.all([
    api("GET", `/api/devices/${enc(id)}`),
    api("GET", `/api/devices/${enc(id)}/shadow`),
    api("GET", `/api/devices/${enc(id)}/commands?limit=20`),
    api("GET", `/api/devices/${enc(id)}/conversation?limit=30`),
    api("GET", "/api/approvals"),
  ]);
  if (current !== view) return;
  view.serverTime = device.serverTime;
  renderHead(els.head, device);
  view.shadow = shadow;
  renderShadow(els.shadow, shadow);
  renderCommands(els.commands, commands.commands, device.serverTime);
  renderApprovals(
    els.approvals,
    approvals.approvals.filter((a) => a.deviceId === id),
    () => refreshDevice(id).catch(() => {}),
    device.serverTime,
  );
  renderConversation(els.conversation, conversation);
  await refreshTelemetry(id, view);
}

function renderHead(el, d) {
  const s = d.status ?? {};
  replace(
    el,
    h(
      "h1",
      {},
      d.id,
      " ",
      h(
        "span",
        { class: d.online ? "pill pill-ok" : "pill pill-muted", id: "device-online" },
        d.online ? "online" : "offline",
      ),
    ),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Last seen"),
      h("dd", {}, ago(d.lastSeenAt ?? s.lastSeen ?? null, d.serverTime)),
      h("dt", {}, "Firmware"),
      h("dd", {}, d.firmware ?? s.firmware ?? "–"),
      h("dt", {}, "Codec"),
      h("dd", {}, d.codec ?? s.codec ?? "default"),
      h("dt", {}, "Agent"),
      h(
        "dd",
        { id: "device-agent-class", class: d.agentClassFallback ? "class-fallback" : undefined },
        agentClassText(d),
      ),
      h("dt", {}, "Last close"),
      h("dd", {}, s.lastClose ?? "–"),
    ),
  );
}

function renderShadow(el, shadow) {
  const doc = (title, d, id) =>
    h(
      "div",
      { class: "doc" },
      h("h3", {}, `${title} `, h("span", { class: "pill pill-muted", id: `${id}-version` }, `v${d?.version ?? 0}`)),
      h("pre", { id }, json(d?.state ?? {})),
    );
  replace(
    el,
    h(
      "div",
      { class: "docs" },
      doc("Reported", shadow.reported, "reported"),
      doc("Desired", shadow.desired, "desired"),
    ),
    h("h3", {}, "Delta (desired, not yet reported)"),
    h("pre", { id: "delta" }, json(shadow.delta ?? {})),
  );
}

async function setDesired(id) {
  const { els } = current;
  let state;
  try {
    state = JSON.parse(els.desiredInput.value);
  } catch {
    els.desiredMsg.textContent = "The patch is not valid JSON.";
    els.desiredMsg.className = "error";
    return;
  }
  const expectedVersion = current.shadow?.desired?.version;
  els.desiredMsg.textContent = "saving…";
  els.desiredMsg.className = "muted";
  try {
    const res = await api("PUT", `/api/devices/${enc(id)}/shadow/desired`, { state, expectedVersion });
    els.desiredMsg.textContent = `Saved as desired version ${res.version}.`;
    els.desiredMsg.className = "ok";
  } catch (err) {
    els.desiredMsg.textContent =
      err.status === 409
        ? "Someone changed the desired state meanwhile; reloaded, try again."
        : `${err.message} (${err.code})`;
    els.desiredMsg.className = "error";
  }
  await refreshDevice(id);
}

async function sendCommand(id) {
  const { els } = current;
  let args;
  if (els.cmdArgs.value.trim() !== "") {
    try {
      args = JSON.parse(els.cmdArgs.value);
    } catch {
      els.cmdMsg.textContent = "Arguments are not valid JSON.";
      els.cmdMsg.className = "error";
      return;
    }
  }
  try {
    const cmd = await api("POST", `/api/devices/${enc(id)}/commands`, { name: els.cmdName.value.trim(), args });
    els.cmdMsg.textContent = `Queued ${cmd.id}.`;
    els.cmdMsg.className = "ok";
    els.cmdName.value = "";
    els.cmdArgs.value = "";
  } catch (err) {
    els.cmdMsg.textContent = `${err.message} (${err.code})`;
    els.cmdMsg.className = "error";
  }
  await refreshDevice(id);
}

function renderCommands(el, commands, now) {
  if (commands.length === 0) return replace(el, empty("No commands sent yet."));
  replace(
    el,
    h(
      "table",
      { class: "table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Command", "Name", "State", "Attempts", "Created", "Result"].map((c) => h("th", {}, c)),
        ),
      ),
      h(
        "tbody",
        {},
        commands.map((c) =>
          h(
            "tr",
            { dataset: { command: c.id } },
            h("td", { class: "mono" }, c.id),
            h("td", {}, c.name),
            h("td", {}, h("span", { class: `pill state-${String(c.state).toLowerCase()}` }, c.state)),
            h("td", {}, `${c.attempts}/${c.maxAttempts}`),
            h("td", {}, time(c.createdAt, now)),
            h(
              "td",
              { class: "mono" },
              c.error ?? (c.result === null || c.result === undefined ? "" : JSON.stringify(c.result)),
            ),
          ),
        ),
      ),
    ),
  );
}

async function refreshTelemetry(id, view = current) {
  if (view === null) return;
  const { els } = view;
  const metricParam = view.metric ? `&metric=${enc(view.metric)}` : "";
  const data = await api("GET", `/api/devices/${enc(id)}/telemetry?order=desc&limit=300${metricParam}`);
  // Another device's view (or none) since the request left: its metric is not this answer's to choose.
  if (current !== view) return;
  const rows = Array.isArray(data.readings) ? data.readings : [];
  const metrics = [...new Set(rows.map((r) => r.metric))].sort();
  if (!view.metric && metrics.length > 0)
    view.metric = metrics.find((m) => rows.some((r) => r.metric === m && typeof r.value === "number")) ?? metrics[0];
  const options = new Set([...metrics, ...[...els.metric.options].map((o) => o.value)].filter(Boolean));
  if (options.size !== els.metric.options.length) {
    replace(
      els.metric,
      [...options].sort().map((m) => h("option", { value: m }, m)),
    );
  }
  els.metric.value = view.metric;
  const series = rows
    .filter((r) => r.metric === view.metric && typeof r.value === "number")
    .map((r) => ({ t: r.ts, v: r.value }));
  lineChart(els.chart, series.length > 0 ? [{ name: view.metric, points: series }] : [], {
    emptyText: "No numeric readings in the last day",
  });
  if (rows.length === 0) return replace(els.readings, empty("No telemetry stored in the last day."));
  replace(
    els.readings,
    h(
      "table",
      { class: "table compact" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Time", "Metric", "Value"].map((c) => h("th", {}, c)),
        ),
      ),
      h(
        "tbody",
        {},
        rows
          .slice(0, 8)
          .map((r) =>
            h(
              "tr",
              {},
              h("td", {}, time(r.ts, view.serverTime)),
              h("td", {}, r.metric),
              h(
                "td",
                { class: "mono" },
                `${typeof r.value === "string" ? r.value : JSON.stringify(r.value)}${r.unit ? ` ${r.unit}` : ""}`,
              ),
            ),
          ),
      ),
    ),
  );
}

function renderConversation(el, data) {
  const u = data.usage ?? {};
  const usage = h(
    "p",
    { class: "muted" },
    `${u.requests ?? 0} engine requests · ${u.promptTokens ?? 0} prompt tokens (${u.cachedTokens ?? 0} cached) · ${u.completionTokens ?? 0} completion tokens`,
  );
  const messages = Array.isArray(data.messages) ? data.messages : [];
  if (messages.length === 0) return replace(el, usage, empty("No reasoning requests yet."));
  replace(
    el,
    usage,
    h(
      "ol",
      { class: "conversation" },
      messages.map((m) =>
        h(
          "li",
          { class: `msg msg-${m.role}` },
          h("span", { class: "role" }, m.role),
          h(
            "div",
            { class: "content" },
            // The model's text and its tool calls are stored together: show both, or the call goes unseen.
            [m.content, ...(m.toolCalls ?? []).map((t) => `→ ${t.name}(${t.arguments})`)]
              .filter((part) => part !== null && part !== undefined && part !== "")
              .join("\n"),
          ),
          m.compacted ? h("span", { class: "muted" }, " (compacted)") : null,
        ),
      ),
    ),
  );
}

export function unmountDevice() {
  current = null;
}
