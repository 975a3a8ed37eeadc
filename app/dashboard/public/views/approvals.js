// Pending tool-call approvals with approve / reject buttons.
import { api, enc } from "../api.js";
import { ago, empty, errorBox, h, replace } from "../dom.js";

// Decisions by "deviceId/approvalId": { approve } while on its way, { done } once stored, { error } after a failure.
// Kept outside the rows because every refresh (2 s) re-renders the list and a decision can take longer (the agent
// may have to wake and run the tool): the new row must keep its buttons disabled, and a late failure must show on
// the row now on the page, not on one already replaced.
const decisions = new Map();
/** Draws a decision's state into the row of that approval now on the page. */
const rowViews = new Map();

/**
 * Renders `approvals` into `container`; `onResolved` runs after a decision was stored; `now` is the server's time
 * their age is measured against (dom.js `ago`).
 */
export function renderApprovals(container, approvals, onResolved, now) {
  const listed = new Set(approvals.map((a) => `${a.deviceId}/${a.approvalId}`));
  for (const [key, d] of decisions) if (!listed.has(key) && d.approve === undefined) decisions.delete(key);
  for (const key of rowViews.keys()) if (!listed.has(key)) rowViews.delete(key);
  if (approvals.length === 0) {
    replace(container, empty("Nothing waits for an operator."));
    return;
  }
  const rows = approvals.map((a) => {
    const key = `${a.deviceId}/${a.approvalId}`;
    const status = h("span", { class: "muted" });
    const approveBtn = h("button", { class: "btn btn-ok", type: "button", "data-action": "approve" }, "Approve");
    const rejectBtn = h("button", { class: "btn btn-danger", type: "button", "data-action": "reject" }, "Reject");
    const show = () => {
      const d = decisions.get(key);
      const busy = d?.approve !== undefined || d?.done !== undefined;
      approveBtn.disabled = busy;
      rejectBtn.disabled = busy;
      if (d === undefined) replace(status);
      else if (d.error !== undefined) replace(status, errorBox(d.error));
      else if (d.done !== undefined) status.textContent = d.done ? "approved" : "rejected";
      else status.textContent = d.approve ? "approving…" : "rejecting…";
    };
    rowViews.set(key, show);
    show();
    const decide = async (approve) => {
      decisions.set(key, { approve });
      rowViews.get(key)?.();
      try {
        await api("POST", `/api/approvals/${enc(a.deviceId)}/${enc(a.approvalId)}`, { approve });
        decisions.set(key, { done: approve });
        rowViews.get(key)?.();
        onResolved();
      } catch (err) {
        decisions.set(key, { error: err });
        rowViews.get(key)?.();
      }
    };
    approveBtn.addEventListener("click", () => decide(true));
    rejectBtn.addEventListener("click", () => decide(false));
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
        h("div", { class: "muted" }, `requested ${ago(a.createdAt, now)}`),
      ),
      h("div", { class: "approval-actions" }, approveBtn, rejectBtn, status),
    );
  });
  replace(container, h("ul", { class: "approvals" }, rows));
}
