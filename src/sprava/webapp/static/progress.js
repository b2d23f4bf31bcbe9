// Progressive enhancement of the dashboard and an item's page: the jobs in progress and
// the analysis states follow the background work without a reload. Every few seconds the
// page asks GET /jobs/progress (the session's cookie; the answer is already in the
// reader's language and limited to what the role may see) and puts the new counts and
// states in place; the state and the summary are aria-live="polite" regions, so screen
// readers announce a change without moving anyone's focus. Without JavaScript the pages
// show the state at the time they were loaded.
(function () {
  "use strict";
  var root = document.querySelector("[data-progress]");
  if (!root || !window.fetch || !window.JSON) { return; }
  var EVERY = 3000;
  var SLOWEST = 60000;
  var untilSettled = root.hasAttribute("data-until-settled");
  var wait = EVERY;
  var lastJobs = "";
  var active = {};

  function tracked() {
    var found = [];
    var cells = document.querySelectorAll("[data-state-of]");
    for (var i = 0; i < cells.length; i += 1) {
      var sha = cells[i].getAttribute("data-state-of");
      if (found.indexOf(sha) < 0) { found.push(sha); }
    }
    return found;
  }

  function address() {
    var query = tracked().map(function (sha) { return "item=" + encodeURIComponent(sha); });
    return root.getAttribute("data-progress") + (query.length ? "?" + query.join("&") : "");
  }

  function put(element, text) {
    if (element && typeof text === "string" && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function showJobs(jobs) {
    put(document.getElementById("job-total"), jobs.total_text);
    put(document.getElementById("jobs-summary"), jobs.summary);
    var list = document.getElementById("jobs-list");
    var shown = JSON.stringify(jobs.shown);
    if (!list || shown === lastJobs) { return; }
    lastJobs = shown;
    while (list.firstChild) { list.removeChild(list.firstChild); }
    jobs.shown.forEach(function (job) {
      var row = document.createElement("li");
      var link = document.createElement("a");
      var code = document.createElement("code");
      row.appendChild(document.createTextNode(job.text + " · "));
      link.href = "/items/" + encodeURIComponent(job.item);
      code.textContent = job.short;
      link.appendChild(code);
      row.appendChild(link);
      list.appendChild(row);
    });
    list.hidden = jobs.shown.length === 0;
  }

  // Returns true when every tracked item's analysis has settled (done, failed or none).
  function showItems(items) {
    var settled = true;
    var cells = document.querySelectorAll("[data-state-of]");
    for (var i = 0; i < cells.length; i += 1) {
      var sha = cells[i].getAttribute("data-state-of");
      var entry = items[sha];
      if (!entry) { continue; }
      var detailed = cells[i].hasAttribute("data-detail") && entry.detail;
      put(cells[i], detailed ? entry.detail : entry.label);
      if (!entry.settled) {
        settled = false;
        active[sha] = true;
      } else if (active[sha] || cells[i].hasAttribute("data-active")) {
        var finished = document.getElementById("analysis-finished");
        if (finished && cells[i].id === "analysis-state") { finished.hidden = false; }
      }
    }
    return settled;
  }

  function later() { window.setTimeout(poll, wait); }

  function poll() {
    if (document.hidden) { later(); return; }
    window.fetch(address(), {credentials: "same-origin", cache: "no-store",
                             headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (response.status === 401 || response.status === 403 || response.status === 404) {
          return null; // the session ended or the item left the reader's scope: stop
        }
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (answer) {
        if (answer === null) { return; }
        wait = EVERY;
        showJobs(answer.jobs);
        var settled = showItems(answer.items);
        if (!(untilSettled && settled)) { later(); }
      })
      .catch(function () {
        wait = Math.min(wait * 2, SLOWEST); // the server is busy or away: ask less often
        later();
      });
  }

  later();
}());
