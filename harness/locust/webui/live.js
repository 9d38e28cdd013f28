// sse-harness: the live chart of locust's "LLM streams" tab.
//
// Every 2 s it reads /sse-harness/live (the plugin's history: one point a second over the
// whole test, from the records themselves; on a master, the records merged from every
// worker) and draws three uPlot charts: latency (TTFT and ITL p50 / p99 over the last
// 10 s), throughput (output tokens/s, requests/s) and load (streams in flight, users).
// In locust's page the charts sit above the tab's table while the tab is open; the page
// /sse-harness/ shows them alone. The element's data-points attribute says how many
// points are drawn.
(function () {
  "use strict";
  const POLL_MS = 2000;
  const ID = "sse-harness-live";
  const GAP_PX = 12;
  const LIVE_URL = new URL("live", document.currentScript.src).href;
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
  const CHARTS = [
    {
      title: "Latency, last 10 s (ms)",
      series: [
        ["TTFT p50", "ttft_p50_ms"],
        ["TTFT p99", "ttft_p99_ms"],
        ["ITL p50", "itl_p50_ms"],
        ["ITL p99", "itl_p99_ms"],
      ],
    },
    {
      title: "Throughput, last 10 s",
      series: [
        ["output tokens/s", "tokens_per_s"],
        ["requests/s", "requests_per_s"],
        ["errors/s", "errors_per_s"],
      ],
    },
    {
      title: "Load",
      series: [
        ["users", "users", [6, 4], "#888"],
        ["streams in flight", "in_flight", null, "#1f77b4"],
      ],
    },
  ];
  let mount = null;
  let plots = [];

  function llmTabOpen() {
    const selected = document.querySelector('[role="tab"][aria-selected="true"]');
    return !!selected && selected.innerText.trim().toUpperCase() === "LLM STREAMS";
  }

  // The element the charts go in: the standalone page's, or a new one above the tab's table.
  function findMount() {
    const standalone = document.getElementById(ID);
    if (standalone && standalone.dataset.standalone) return standalone;
    if (!llmTabOpen()) return null;
    if (standalone && standalone.isConnected) return standalone;
    const table = [...document.querySelectorAll("table")].find((t) =>
      [...t.querySelectorAll("th")].some((th) => th.innerText.trim() === "Whole test"),
    );
    if (!table) return null;
    const holder = table.parentElement;
    const element = document.createElement("div");
    element.id = ID;
    element.style.cssText = `display:flex;flex-wrap:wrap;gap:${GAP_PX}px;margin:8px 0 16px`;
    holder.parentElement.insertBefore(element, holder);
    return element;
  }

  function colours() {
    const text = getComputedStyle(document.body).color || "#222";
    return { text: text, grid: "rgba(128,128,128,0.25)" };
  }

  function build(element) {
    element.replaceChildren();
    const total = element.clientWidth || element.parentElement.clientWidth || 960;
    const width = Math.max(280, Math.floor((total - 2 * GAP_PX) / 3) - 24);
    const { text, grid } = colours();
    return CHARTS.map((chart) => {
      const box = document.createElement("div");
      box.className = "sse-harness-chart";
      element.appendChild(box);
      const axis = { stroke: text, grid: { stroke: grid }, ticks: { stroke: grid } };
      const options = {
        title: chart.title,
        width: width,
        height: 220,
        scales: { x: { time: false } },
        series: [
          { label: "s" },
          ...chart.series.map(([label, , dash, colour], i) => ({
            label: label,
            stroke: colour || PALETTE[i % PALETTE.length],
            width: 2,
            dash: dash,
            spanGaps: true,
          })),
        ],
        legend: { live: false },
        axes: [{ ...axis, label: "s since the test started" }, { ...axis, size: 60 }],
      };
      const plot = new uPlot(options, [[]].concat(chart.series.map(() => [])), box);
      const title = box.querySelector(".u-title");
      if (title) title.style.color = text;
      return plot;
    });
  }

  function draw(live) {
    const history = live.history || [];
    const t = history.map((p) => p.t);
    plots.forEach((plot, i) => {
      const series = CHARTS[i].series.map(([, key]) => history.map((p) => p[key]));
      plot.setData([t, ...series]);
    });
    mount.dataset.points = String(history.length);
  }

  async function tick() {
    const element = findMount();
    if (!element) {
      mount = null;
      return;
    }
    if (element !== mount) {
      mount = element;
      plots = build(element);
    }
    try {
      const response = await fetch(LIVE_URL, { cache: "no-store" });
      if (response.ok) draw(await response.json());
    } catch (error) {
      mount.dataset.error = String(error);
    }
  }

  setInterval(tick, POLL_MS);
  document.addEventListener("click", () => setTimeout(tick, 100));
  tick();
})();
