// The county dashboard's trend charts with a department selector (sortable tables: common.js).
// Data comes from the JSON block in the page; nothing is fetched.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("dashboard-data").textContent);

  // -- trend charts ------------------------------------------------------------------------
  var FONT = window.creditCharts.FONT;
  var trends = data.trends;
  function option(labels, s, withReport) {
    var lines = [["合规率", s.compliance, "#1a7f37"], ["及时率", s.timely, "#0b4f8a"], ["迟报率", s.late, "#b42318"]];
    if (withReport) lines.push(["上报率", s.report, "#8250df"]);
    var series = [{ name: "归集量", type: "bar", yAxisIndex: 1, data: s.received, itemStyle: { color: "#c9d6e3" } }];
    lines.forEach(function (l) {
      series.push({ name: l[0], type: "line", data: l[1], connectNulls: false, symbolSize: 5, itemStyle: { color: l[2] } });
    });
    return {
      animation: false,
      textStyle: { fontFamily: FONT },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 48, right: 52, top: 36, bottom: 28 },
      xAxis: { type: "category", data: labels },
      yAxis: [{ type: "value", min: 0, max: 100, name: "%" }, { type: "value", name: "行", splitLine: { show: false } }],
      series: series
    };
  }
  var daily = echarts.init(document.getElementById("chart-daily"), null, { renderer: "canvas" });
  var monthly = echarts.init(document.getElementById("chart-monthly"), null, { renderer: "canvas" });
  var dayLabels = trends.days.map(function (d) { return d.slice(5); });
  function show(key) {
    var s = trends.series[key] || trends.series.ALL;
    daily.setOption(option(dayLabels, s.daily, false), true);
    monthly.setOption(option(trends.months, s.monthly, true), true);
    document.body.dataset.trendScope = key;
  }
  var select = document.getElementById("dept-select");
  select.addEventListener("change", function () { show(select.value); });
  show(select.value);
  window.addEventListener("resize", function () { daily.resize(); monthly.resize(); });
  window.dashboardCharts = { daily: daily, monthly: monthly };
})();
