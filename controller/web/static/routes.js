// The Routes page's rollout watcher: polls the rollout's JSON every 1.5 s and updates each gateway's row
// in place (no reload), until the rollout is done or halted; at most 800 polls (20 minutes).
(function () {
  "use strict";
  var box = document.getElementById("rollout");
  if (!box || !box.getAttribute("data-src")) { return; }
  var src = box.getAttribute("data-src"), polls = 0, MAX_POLLS = 800, EVERY_MS = 1500;
  var state = box.querySelector(".rollout-status");

  function text(row, col, value) {
    var cell = row.querySelector("td[data-col='" + col + "']");
    if (cell) { cell.textContent = value; }
    return cell;
  }

  function show(r) {
    state.textContent = r.status + (r.reason ? " — " + r.reason : "");
    state.className = "rollout-status " + r.status;
    box.setAttribute("data-status", r.status);
    r.targets.forEach(function (t) {
      var row = box.querySelector("tr[data-gateway='" + CSS.escape(t.gateway) + "']");
      if (!row) { return; }
      var cell = text(row, "status", t.status);
      if (cell) { cell.className = "status " + t.status; }
      text(row, "runs", t.applied_version === null ? "—" : "v" + t.applied_version);
      text(row, "reason", t.reason || "");
    });
  }

  function poll() {
    polls += 1;
    fetch(src, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (resp) {
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        return resp.json();
      })
      .then(function (r) {
        show(r);
        if (r.status === "done" || r.status === "halted") { box.setAttribute("data-watching", "finished"); return; }
        if (polls < MAX_POLLS) { window.setTimeout(poll, EVERY_MS); }
        else { box.setAttribute("data-watching", "gave up"); }
      })
      .catch(function (err) {
        box.setAttribute("data-watching", "stopped");
        state.textContent += " (watch stopped: " + err.message + "; reload to try again)";
      });
  }

  box.setAttribute("data-watching", "yes");
  poll();
})();
