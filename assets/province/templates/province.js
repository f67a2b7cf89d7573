// The province league page: one chart per county (worst first, as laid out by the page), each
// with its daily 归集量 and rates. Data comes from the JSON block in the page; nothing is fetched.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("province-data").textContent);
  var FONT = window.creditCharts.FONT;
  var charts = {};
  data.charts.forEach(function (c) {
    var el = document.getElementById("chart-" + c.code);
    if (!el || !c.series) return;
    var s = c.series;
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      textStyle: { fontFamily: FONT },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 48, right: 52, top: 36, bottom: 28 },
      xAxis: { type: "category", data: s.days.map(function (d) { return d.slice(5); }) },
      yAxis: [{ type: "value", min: 0, max: 100, name: "%" }, { type: "value", name: "行", splitLine: { show: false } }],
      series: [
        { name: "归集量", type: "bar", yAxisIndex: 1, data: s.received, itemStyle: { color: "#c9d6e3" } },
        { name: "合规率", type: "line", data: s.compliance, symbolSize: 5, itemStyle: { color: "#1a7f37" } },
        { name: "及时率", type: "line", data: s.timely, symbolSize: 5, itemStyle: { color: "#0b4f8a" } },
        { name: "迟报率", type: "line", data: s.late, symbolSize: 5, itemStyle: { color: "#b42318" } }
      ]
    });
    charts[c.code] = chart;
  });
  window.addEventListener("resize", function () { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); });
  window.provinceCharts = charts;
})();
