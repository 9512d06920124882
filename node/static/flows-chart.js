// The stewards' flow diagram: hours from the communities that provided them (left)
// to those that received them (right), drawn with the vendored Chart.js and its
// Sankey controller. The numbers come from the canvas's data-flows attribute, the
// same ones the table beside it shows; without scripts the table is the page.
(function () {
  "use strict";

  var canvas = document.getElementById("flow-chart");
  if (!canvas || typeof window.Chart === "undefined") {
    return;
  }
  var data = JSON.parse(canvas.dataset.flows);
  var HOME = "#1c6b4a"; // --c-primary: our community
  var OTHERS = ["#5b2c8f", "#0b4f8a", "#9a4a00", "#3b4650", "#8a1c5b", "#2f6f73"];

  // Each community is a node on each side: "p:" provided, "r:" received.
  var colours = {};
  var labels = {};
  var column = {};
  var next = 0;
  Object.keys(data.names).forEach(function (id) {
    colours[id] = id === data.home ? HOME : OTHERS[next++ % OTHERS.length];
    labels["p:" + id] = data.names[id];
    labels["r:" + id] = data.names[id];
    column["p:" + id] = 0;
    column["r:" + id] = 1;
  });
  var flows = data.flows.map(function (flow) {
    return { from: "p:" + flow.from, to: "r:" + flow.to, flow: flow.hours };
  });
  var colourOf = function (key) {
    return colours[key.slice(2)];
  };

  var figure = canvas.closest("figure");
  if (figure) {
    figure.hidden = false;
  }
  new window.Chart(canvas, {
    type: "sankey",
    data: {
      datasets: [
        {
          label: "Hours",
          data: flows,
          labels: labels,
          column: column,
          colorFrom: function (c) {
            return colourOf(c.dataset.data[c.dataIndex].from);
          },
          colorTo: function (c) {
            return colourOf(c.dataset.data[c.dataIndex].to);
          },
          colorMode: "gradient",
          alpha: 0.55,
          borderWidth: 0,
          nodeWidth: 14,
          color: "#1d2327",
          font: { size: 13, family: "system-ui, sans-serif" },
          size: "max",
        },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: window.matchMedia("(prefers-reduced-motion: reduce)").matches ? false : undefined,
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: function (item) {
              var flow = item.raw;
              return labels[flow.from] + " → " + labels[flow.to] + ": " + flow.flow + " h";
            },
          },
        },
      },
    },
  });
})();
