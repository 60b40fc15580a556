// Draws the dashboard's charts from the configurations the page embeds (#dashboard-charts).
// Matrix (heatmap) cells are sized from the panel's column and row counts; every canvas is
// marked data-drawn="1" after its chart has rendered.
(function () {
  "use strict";
  const panels = JSON.parse(document.getElementById("dashboard-charts").textContent);
  const drawn = {
    id: "markDrawn",
    afterRender(chart) { chart.canvas.dataset.drawn = "1"; },
  };
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    const panel = panels[canvas.dataset.chart];
    const config = panel.chart;
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
    if (config.type === "matrix") {
      const columns = panel.matrix.x || 1;
      const rows = panel.matrix.y || 1;
      config.data.datasets.forEach(function (dataset) {
        dataset.width = function (context) { const area = context.chart.chartArea; return area ? area.width / columns - 2 : 0; };
        dataset.height = function (context) { const area = context.chart.chartArea; return area ? area.height / rows - 2 : 0; };
      });
      config.options.plugins = Object.assign({}, config.options.plugins, {
        tooltip: { callbacks: { title: function () { return ""; }, label: function (item) { return item.raw.y + " " + item.raw.x + ": " + item.raw.label; } } },
      });
    }
    config.plugins = [drawn];
    new Chart(canvas, config);
  });
})();
