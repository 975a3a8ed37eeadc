// Provisioning from the dashboard: the new device's secret is shown once, as the API returns it once.
import { api } from "../api.js";
import { errorBox, h, replace } from "../dom.js";

const $ = (id) => document.getElementById(id);

/** Wires the "Add a device" form; `onAdded` refreshes the fleet. */
export function setupProvisioning(onAdded) {
  $("provision-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = $("provision-id").value.trim();
    const codec = $("provision-codec").value;
    const out = $("provision-result");
    try {
      const res = await api("POST", "/api/devices", codec === "" ? { id } : { id, codec });
      $("provision-id").value = "";
      replace(
        out,
        h("p", { class: "ok" }, `Added ${res.device.id}. Its MQTT secret, shown only now:`),
        h("pre", { id: "provision-secret" }, res.secret),
        h("p", { class: "muted" }, `Client id and username: ${res.device.id}. Store the secret in the device now.`),
      );
      onAdded();
    } catch (err) {
      replace(out, errorBox(err));
    }
  });
}
