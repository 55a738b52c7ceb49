// The console's own behaviour: charts from JSON specs, the survey form's complaint fields,
// the time slider's spoken value, and live alerts over server-sent events. No inline script.
(function () {
  "use strict";

  // Okabe-Ito: told apart by most colour-blind readers; every series also has its own dash
  // pattern and point shape, so none depends on colour alone.
  var COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
  var DASHES = [[], [8, 4], [2, 3], [12, 3, 2, 3], [4, 4], [1, 2]];
  var SHAPES = ["circle", "rect", "triangle", "rectRot", "crossRot", "star", "cross", "line"];
  var STATUS_SHAPES = { met: "circle", ok: "rect", warning: "triangle", breached: "crossRot", no_target: "line" };

  // Bars: each series its own fill pattern too (plain, stripes, dots, cross-hatch...).
  function pattern(colour, kind) {
    if (kind === 0) { return colour; }
    var tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    var c = tile.getContext("2d");
    c.fillStyle = colour; c.fillRect(0, 0, 8, 8);
    c.strokeStyle = "rgba(255,255,255,0.9)"; c.fillStyle = "rgba(255,255,255,0.9)"; c.lineWidth = 2;
    c.beginPath();
    switch (kind % 5) {
      case 1: c.moveTo(0, 8); c.lineTo(8, 0); break;
      case 2: c.arc(4, 4, 1.6, 0, 2 * Math.PI); c.fill(); break;
      case 3: c.moveTo(0, 0); c.lineTo(8, 8); c.moveTo(0, 8); c.lineTo(8, 0); break;
      case 4: c.moveTo(0, 4); c.lineTo(8, 4); break;
      default: c.moveTo(4, 0); c.lineTo(4, 8);
    }
    c.stroke();
    return c.createPattern(tile, "repeat");
  }

  function draw(script) {
    if (typeof window.Chart === "undefined") { return; }
    var canvas = document.getElementById(script.getAttribute("data-chart"));
    if (!canvas || canvas.dataset.drawn) { return; }
    var spec = JSON.parse(script.textContent);
    var n = 0;
    var datasets = spec.datasets.map(function (d) {
      var i = (d.forecast || d.target) ? Math.max(n - 1, 0) : n++;
      var colour = COLOURS[i % COLOURS.length];
      var set = { label: d.label, data: d.data, borderColor: colour, backgroundColor: colour,
                  borderWidth: 2, pointStyle: SHAPES[i % SHAPES.length], pointRadius: 3,
                  borderDash: DASHES[i % DASHES.length], spanGaps: true };
      if (d.thin) { set.borderWidth = 1.5; set.pointRadius = 0; }
      if (d.forecast) {
        set.borderDash = d.forecast === "expected" ? [2, 3] : [8, 4];
        set.pointRadius = 0; set.borderWidth = 2;
      }
      if (d.target) {
        set.borderColor = set.backgroundColor = "#1b1b1b";
        set.borderDash = [1, 3]; set.pointStyle = spec.type === "scatter" ? "line" : "triangle";
        set.pointRadius = spec.type === "scatter" ? 6 : 7; set.showLine = spec.type !== "scatter";
      }
      if (d.status) {
        set.pointStyle = STATUS_SHAPES[d.status] || "circle";
        set.pointRadius = d.status === "breached" ? 6 : 4;
        set.borderColor = set.backgroundColor = { breached: "#a3141a", warning: "#7a4d00", met: "#1e6b30", ok: "#0072B2" }[d.status] || colour;
      }
      if (spec.type === "line") { set.showLine = true; set.fill = false; }
      if (spec.type === "scatter" && !d.target) { set.showLine = false; }
      if (spec.type === "bar") {
        set.borderDash = []; set.borderWidth = 1; set.borderColor = "#1b1b1b";
        set.backgroundColor = pattern(colour, i);
      }
      if (spec.type === "scatter" && d.target) { set.showLine = false; }
      return set;
    });
    function axis(a, linear) {
      var out = { title: { display: !!(a && a.title), text: a && a.title } };
      if (linear) { out.type = "linear"; }
      if (a && a.min !== undefined) { out.min = a.min; }
      if (a && a.max !== undefined) { out.max = a.max; }
      return out;
    }
    canvas.dataset.drawn = "1";
    new window.Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        plugins: { legend: { labels: { usePointStyle: spec.type !== "bar" } } },
        // A point that names a situation opens its evidence (the tables link it too).
        onClick: function (_event, elements, chart) {
          if (!elements.length) { return; }
          var point = chart.data.datasets[elements[0].datasetIndex].data[elements[0].index];
          if (point && point.id) { window.location.href = "/console/reactions/" + point.id; }
        },
        scales: { x: axis(spec.x, spec.type === "scatter"), y: axis(spec.y, true) }
      }
    });
  }

  function charts(root) {
    (root || document).querySelectorAll("script[data-chart]").forEach(draw);
  }

  // An unticked answer asks for the complaint text (and requires it); a ticked one hides it.
  function surveyForm(root) {
    (root || document).querySelectorAll(".question input[type=checkbox]").forEach(function (box) {
      if (box.dataset.wired) { return; }
      box.dataset.wired = "1";
      box.addEventListener("change", function () {
        var why = document.getElementById(box.getAttribute("aria-controls"));
        var text = why && why.querySelector("textarea");
        if (!why || !text) { return; }
        why.hidden = box.checked;
        text.required = !box.checked;
        if (!box.checked) { text.focus(); }
      });
    });
  }

  // The slider says which event it stands on, not just a number.
  function slider(root) {
    var range = (root || document).querySelector("input[type=range][data-labels]");
    if (!range || range.dataset.wired) { return; }
    range.dataset.wired = "1";
    var labels = JSON.parse(range.getAttribute("data-labels"));
    function speak() {
      var i = parseInt(range.value, 10);
      range.setAttribute("aria-valuetext", "event " + (i + 1) + " of " + labels.length + ": " + labels[i]);
    }
    range.addEventListener("input", speak);
    speak();
  }

  function alerts() {
    var url = document.body.getAttribute("data-alerts");
    var list = document.getElementById("alerts");
    var state = document.getElementById("alerts-state");
    if (!url || !list || typeof window.EventSource === "undefined") { return; }
    var source = new EventSource(url);
    source.addEventListener("ready", function () { state.textContent = "(connected)"; });
    source.onerror = function () { state.textContent = "(reconnecting…)"; };
    // sse-starlette names each event by the alert's kind; EventSource has no catch-all, so
    // the page lists the kinds the server knows (consumers.alert_hub.ALERT_KINDS).
    source.onmessage = show;
    JSON.parse(document.body.getAttribute("data-alert-kinds") || "[]").forEach(function (k) {
      source.addEventListener(k, show);
    });
    var known = {};
    function show(event) {
      var alert;
      try { alert = JSON.parse(event.data); } catch (e) { return; }
      if (alert.id && known[alert.id]) { return; }
      if (alert.id) { known[alert.id] = true; }
      var item = document.createElement("li");
      item.setAttribute("data-alert-kind", event.type === "message" ? (alert.kind || "alert") : event.type);
      var words = [(alert.kind || event.type).replace(/_/g, " ")];
      if (alert.situation_kind) { words.push(alert.situation_kind.replace(/_/g, " ")); }
      else if (alert.subject) { words.push(alert.subject.replace(/_/g, " ")); }
      if (alert.clock) { words.push("clock " + alert.clock.replace(/_/g, " ")); }
      if (alert.at) { words.push("at " + alert.at.replace("T", " ").slice(0, 16) + " UTC"); }
      var strong = document.createElement("strong");
      strong.textContent = "⚠ " + words.shift();
      item.appendChild(strong);
      item.appendChild(document.createTextNode(": " + words.join(", ") + " "));
      if (alert.situation_id) {
        var link = document.createElement("a");
        link.href = "/console/reactions/" + alert.situation_id;
        link.textContent = "evidence";
        item.appendChild(link);
      }
      if (alert.client_id && document.querySelector("header nav a[href='/console/clients']")) {
        item.appendChild(document.createTextNode(" · "));
        var client = document.createElement("a");
        client.href = "/console/clients/" + alert.client_id;
        client.textContent = "client";
        item.appendChild(client);
      }
      list.insertBefore(item, list.firstChild);
      while (list.children.length > 50) { list.removeChild(list.lastChild); }
    }
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function wire(root) { charts(root); surveyForm(root); slider(root); }

  document.addEventListener("DOMContentLoaded", function () { wire(document); alerts(); });
  document.addEventListener("htmx:afterSettle", function (e) { wire(e.target); });
})();
