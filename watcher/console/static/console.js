/* registry-watcher console: sort and filter a table, and keep the page current in place.
   Fetches fresh sections at most every 5 s, never while the page is hidden; no reload, no scroll jump. */
(function () {
  "use strict";
  var PERIOD_MS = 5000;
  var main = document.querySelector("main[data-refresh]");
  var sorted = { col: -1, dir: 1 };
  var lastFetch = Date.now();
  var busy = false;

  function cellKey(row, col) {
    var cell = row.cells[col];
    if (!cell) { return ""; }
    var key = cell.getAttribute("data-sort");
    return key !== null ? key : cell.textContent.trim();
  }

  function sortTable(table) {
    if (sorted.col < 0 || !table.tBodies.length) { return; }
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      return sorted.dir * cellKey(a, sorted.col).localeCompare(cellKey(b, sorted.col), undefined, { numeric: true });
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.classList.toggle("sorted-asc", i === sorted.col && sorted.dir === 1);
      th.classList.toggle("sorted-desc", i === sorted.col && sorted.dir === -1);
    });
  }

  function filterTable(table) {
    var input = document.getElementById("filter");
    if (!input || !table.tBodies.length) { return; }
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var text = row.textContent.toLowerCase();
      row.classList.toggle("hidden", !words.every(function (w) { return text.indexOf(w) >= 0; }));
    });
  }

  function tables() { return document.querySelectorAll("table.sortable"); }

  function reapply() {
    Array.prototype.forEach.call(tables(), function (t) { sortTable(t); filterTable(t); });
  }

  document.addEventListener("click", function (event) {
    var th = event.target.closest ? event.target.closest("table.sortable th") : null;
    if (!th) { return; }
    var col = th.cellIndex;
    sorted = { col: col, dir: sorted.col === col ? -sorted.dir : 1 };
    sortTable(th.closest("table"));
  });

  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "filter") {
      Array.prototype.forEach.call(tables(), filterTable);
    }
  });

  function refresh() {
    if (!main || busy || document.hidden || Date.now() - lastFetch < PERIOD_MS) { return; }
    busy = true;
    lastFetch = Date.now();
    var url = main.getAttribute("data-refresh");
    var since = encodeURIComponent(main.getAttribute("data-version") || "");
    fetch(url + (url.indexOf("?") >= 0 ? "&" : "?") + "since=" + since,
          { headers: { "Accept": "application/json" }, cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data || data.unchanged) { return; }
        Object.keys(data.sections || {}).forEach(function (id) {
          var target = document.getElementById(id);
          if (target) { target.innerHTML = data.sections[id]; }
        });
        main.setAttribute("data-version", data.version);
        var stamp = document.querySelector("header .updated time");
        if (stamp && data.updated_at) { stamp.textContent = data.updated_at; }
        reapply();
      })
      .catch(function () { /* the daemon is restarting: the next period tries again */ })
      .then(function () { busy = false; });
  }

  if (main) {
    setInterval(refresh, 1000);
    document.addEventListener("visibilitychange", refresh);
  }
})();
