// Tiny DOM helpers. Text always goes through textContent, so device-supplied strings can never inject markup.

/** h("div", {class: "x", onclick: fn}, "text", child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function replace(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
}

/**
 * "12 s ago", "3 min ago", "5 h ago", the date and time past a day, or "never". `now` is the server's time as the
 * API reports it (`serverTime`): the times measured are the server's, and a browser whose clock is off would show
 * every age off by as much.
 */
export function ago(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(ms).toLocaleString();
}

/**
 * The time of day of a moment on `now`'s day, else its date and time as `ago` shows older moments: a reading from
 * yesterday must not pass for today's. `now` is the server's time where the page has it (see `ago`).
 */
export function time(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return "–";
  const at = new Date(ms);
  return at.toDateString() === new Date(now).toDateString() ? at.toLocaleTimeString() : at.toLocaleString();
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

/** Short one-line view of readings: "temp=21.5 hum=40". */
export function readingsLine(readings) {
  if (readings === null || typeof readings !== "object") return readings === null ? "" : String(readings);
  return Object.entries(readings)
    .slice(0, 4)
    .map(([k, v]) => `${k}=${typeof v === "number" ? shortNumber(v) : JSON.stringify(v)}`)
    .join(" ");
}

/** 3 decimals, or 3 significant digits below 1: toFixed(3) alone showed a reading of 0.00042 A as 0. */
function shortNumber(v) {
  return Number(Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3));
}

/**
 * The agent class cell of a device: the class it asked for, and which class serves it when the bridge does not serve
 * that one (`agentClassFallback`, as `agent-bridge devices list` shows it).
 */
export function agentClassText(device) {
  const asked = device.agentClass ?? "DeviceAgent";
  return device.agentClassFallback ? `${asked} (not served; served by ${device.agentClassFallback})` : asked;
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, `${err.message}${err.code ? ` (${err.code})` : ""}`);
}
