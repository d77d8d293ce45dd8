/* Report dashboards: draws each .report-js-chart from its JSON series endpoint with the vendored uPlot.
   Without script (or when the fetch fails) the server-drawn SVG charts and the table stay: nothing is lost.
   Runs again on every HTMX swap, so the 30-second poll redraws the chart with the fresh figures. */
(function () {
  "use strict";

  function seconds(isoDay) {
    return Date.parse(isoDay + "T00:00:00Z") / 1000;
  }

  function amountIn(list, currency) {
    for (var i = 0; i < (list || []).length; i++) {
      if (list[i].currency === currency) return list[i].amount;
    }
    return 0;
  }

  function draw(box) {
    if (!window.uPlot || box.dataset.drawn) return;
    box.dataset.drawn = "1";
    var currency = box.dataset.currency;
    fetch(box.dataset.seriesUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (body) {
        var days = body.days;
        var x = days.map(function (d) { return seconds(d.date); });
        var width = Math.max(320, box.parentElement.clientWidth - 8);
        var counts = {
          title: "Clicks, signups and first payments by day (UTC)",
          width: width, height: 220,
          series: [{}, { label: "Clicks", stroke: "#3147c9" }, { label: "Signups", stroke: "#d9822b" },
                   { label: "First payments", stroke: "#137a3a" }],
          axes: [{}, { size: 60 }],
        };
        var money = {
          title: "Revenue and commissions by day, " + currency + " (minor units)",
          width: width, height: 220,
          series: [{}, { label: "Revenue", stroke: "#3147c9" }, { label: "Commissions", stroke: "#d9822b" }],
          axes: [{}, { size: 80 }],  // room for amounts in minor units
        };
        box.textContent = "";
        new window.uPlot(counts, [x, days.map(function (d) { return d.clicks; }),
          days.map(function (d) { return d.signups; }), days.map(function (d) { return d.customers_paid; })], box);
        new window.uPlot(money, [x, days.map(function (d) { return amountIn(d.revenue, currency); }),
          days.map(function (d) { return amountIn(d.commissions, currency); })], box);
        box.hidden = false;
        var fallback = box.parentElement.querySelector(".svg-fallback");
        if (fallback) fallback.hidden = true;
      })
      .catch(function () { box.hidden = true; });
  }

  function drawAll(root) {
    (root || document).querySelectorAll(".report-js-chart[data-series-url]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (e) { drawAll(e.target); });
})();
