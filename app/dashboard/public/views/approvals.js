// Pending tool-call approvals with approve / reject buttons.
import { api, enc } from "../api.js";
import { ago, empty, errorBox, h, replace } from "../dom.js";

/** Renders `approvals` into `container`; `onResolved` runs after a decision was stored. */
export function renderApprovals(container, approvals, onResolved) {
  if (approvals.length === 0) {
    replace(container, empty("Nothing waits for an operator."));
    return;
  }
  const rows = approvals.map((a) => {
    const status = h("span", { class: "muted" });
    const decide = async (approve, buttons) => {
      for (const b of buttons) b.disabled = true;
      status.textContent = approve ? "approving…" : "rejecting…";
      try {
        await api("POST", `/api/approvals/${enc(a.deviceId)}/${enc(a.approvalId)}`, { approve });
        status.textContent = approve ? "approved" : "rejected";
        onResolved();
      } catch (err) {
        replace(status, errorBox(err));
        for (const b of buttons) b.disabled = false;
      }
    };
    const approveBtn = h("button", { class: "btn btn-ok", type: "button", "data-action": "approve" }, "Approve");
    const rejectBtn = h("button", { class: "btn btn-danger", type: "button", "data-action": "reject" }, "Reject");
    approveBtn.addEventListener("click", () => decide(true, [approveBtn, rejectBtn]));
    rejectBtn.addEventListener("click", () => decide(false, [approveBtn, rejectBtn]));
    return h(
      "li",
      { class: "approval", dataset: { approval: a.approvalId, device: a.deviceId } },
      h(
        "div",
        { class: "approval-main" },
        h("a", { href: `#/device/${enc(a.deviceId)}` }, a.deviceId),
        " wants to run ",
        h("code", {}, String(a.tool ?? "a tool")),
        h("pre", { class: "args" }, String(a.args ?? "")),
        a.question ? h("div", { class: "muted" }, `Asked: ${a.question}`) : null,
        h("div", { class: "muted" }, `requested ${ago(a.createdAt)}`),
      ),
      h("div", { class: "approval-actions" }, approveBtn, rejectBtn, status),
    );
  });
  replace(container, h("ul", { class: "approvals" }, rows));
}
