// Dashboard entry: token handling, hash routing (#/ and #/device/<id>), and polling while the tab is visible.
import { adoptTokenFromLink, clearToken, getToken, setToken } from "./api.js";
import { errorBox, replace } from "./dom.js";
import { mountDevice, refreshDevice, unmountDevice } from "./views/device.js";
import { fleetError, refreshFleet } from "./views/fleet.js";
import { setupProvisioning } from "./views/provision.js";

const FLEET_POLL_MS = 2000;
const DEVICE_POLL_MS = 3000;
const $ = (id) => document.getElementById(id);
let timer = null;
let generation = 0;

function route() {
  const m = /^#\/device\/(.+)$/.exec(location.hash);
  if (m === null) return { view: "fleet" };
  try {
    return { view: "device", id: decodeURIComponent(m[1]) };
  } catch {
    // A hand-typed address with a bad % sequence names no device: the fleet, not an error that stops the polling.
    return { view: "fleet" };
  }
}

function setStatus(text, kind) {
  const el = $("conn-status");
  el.textContent = text;
  el.className = `pill pill-${kind}`;
}

function askToken(message) {
  const dialog = $("login");
  $("login-error").hidden = message === undefined;
  $("login-error").textContent = message ?? "";
  if (!dialog.open) dialog.showModal();
  $("login-token").focus();
}

/** Forgets the token and asks for one; polling resumes once it is given. */
function signOut(message) {
  clearToken();
  $("logout").hidden = true;
  setStatus("signed out", "muted");
  askToken(message);
}

async function tick(gen) {
  if (gen !== generation) return;
  const r = route();
  try {
    if (r.view === "device") await refreshDevice(r.id);
    else await refreshFleet();
    if (gen !== generation) return; // the view changed while this refresh was out: the new view's tick reports
    setStatus("live", "ok");
    $("last-update").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    // A refresh of a view the operator has left (another device, the fleet, a new token): its failure is not the new
    // view's to show, and its 401 may be for a token replaced since. The new view's own refresh reports for it.
    if (gen !== generation) return;
    if (err.status === 401) {
      signOut("That token was refused. Paste the operator token again.");
      return; // polling resumes after a new token is given
    }
    setStatus(err.status === 0 ? "offline" : "error", "bad");
    if (r.view === "device") replace($("view-device").querySelector(".device-head") ?? $("view-device"), errorBox(err));
    else fleetError(err);
  }
  if (gen === generation) timer = setTimeout(() => tick(gen), r.view === "device" ? DEVICE_POLL_MS : FLEET_POLL_MS);
}

function start() {
  clearTimeout(timer);
  generation++;
  // The sign-in link may also arrive as a hash change on an open page.
  if (adoptTokenFromLink() === "malformed") {
    // The link was meant to sign this tab in: a token the tab had before is not the one the operator chose.
    signOut("The sign-in link's token is damaged (a bad % sequence), so it was not used. Paste the operator token.");
    return;
  }
  if (getToken() === null) {
    signOut();
    return;
  }
  $("logout").hidden = false;
  if ($("login").open) $("login").close();
  const r = route();
  $("view-fleet").hidden = r.view !== "fleet";
  $("view-device").hidden = r.view !== "device";
  if (r.view === "device") mountDevice($("view-device"), r.id);
  else unmountDevice();
  void tick(generation);
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("login-token").value.trim();
  if (token.length < 16) {
    askToken("A token has at least 16 characters.");
    return;
  }
  setToken(token);
  $("login-token").value = "";
  $("login").close();
  start();
});
$("logout").addEventListener("click", () => {
  clearToken();
  $("logout").hidden = true;
  start();
});
let filterTimer = null;
$("fleet-filter").addEventListener("input", () => {
  // Debounced: the filter runs on the server.
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    if (route().view === "fleet") start();
  }, 250);
});
setupProvisioning(() => refreshFleet().catch(() => {}));
window.addEventListener("hashchange", start);
document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    clearTimeout(timer);
    generation++;
  } else start();
});

start();
