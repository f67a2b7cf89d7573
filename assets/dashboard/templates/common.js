// Shared by the county dashboard and the province league page (assets/province/report.py):
// sortable tables (click a header to sort by it, again to reverse; empty values last) and the
// charts' font. Inlined into each page before the page's own script; nothing is fetched.
(function () {
  "use strict";
  window.creditCharts = {
    FONT: '"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", sans-serif'
  };

  // -- sortable tables: click a header to sort by it, click again to reverse ---------------
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var numeric = th.dataset.type === "num";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
          // empty values (no data) always sort last
          if (x === "" && y === "") return 0;
          if (x === "") return 1;
          if (y === "") return -1;
          var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, "zh-CN");
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
