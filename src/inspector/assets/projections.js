// The projections view: statuses and lag charts.

import { $, api, el, shortTime, svg } from "./dom.js";
import { target } from "./state.js";

export async function loadProjections() {
  const answer = await api("/api/projections", { target: target().index });
  $("projections-note").textContent = answer.samplingError
    ? `Sampling failed: ${answer.samplingError}`
    : answer.projections.length === 0
      ? "No projection status is stored here."
      : "";
  const box = $("projections");
  box.replaceChildren();
  for (const p of answer.projections) {
    const s = p.status;
    const card = el(
      "article",
      { className: `projection ${s ? s.status : "missing"}`, testid: `projection-${p.name}` },
      el(
        "h3",
        { className: "projection-name" },
        el("span", { text: p.name }),
        " ",
        el("span", { className: "badge", text: s ? s.status : "no status" }),
      ),
    );
    if (s) {
      card.append(
        el(
          "dl",
          {},
          el("dt", { text: "checkpoint" }),
          el("dd", { text: s.checkpoint }),
          el("dt", { text: "lag" }),
          el("dd", { testid: "lag", text: s.lagEvents === undefined ? "unknown" : `${s.lagEvents} events` }),
          el("dt", { text: "lag (time)" }),
          el("dd", { text: s.lagMs === undefined ? "unknown" : `${s.lagMs} ms` }),
          el("dt", { text: "updated" }),
          el("dd", { text: shortTime(s.updatedAt) }),
        ),
      );
      if (s.lastError) card.append(el("p", { className: "error", text: `last error: ${s.lastError}` }));
    }
    card.append(lagChart(p.samples));
    box.append(card);
  }
}

/** A line chart of a projection's lag (events behind its source) over the sampled time. */
function lagChart(samples) {
  const width = 360;
  const height = 100;
  const pad = 24;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "lag chart", class: "lag" });
  const known = samples.filter((s) => typeof s.lagEvents === "number");
  if (known.length === 0) {
    const t = svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "label" });
    t.textContent = "no lag samples yet";
    chart.append(t);
    return chart;
  }
  const t0 = known[0].at;
  const span = Math.max(known[known.length - 1].at - t0, 1);
  const top = Math.max(...known.map((s) => s.lagEvents), 1);
  const points = known.map((s) => {
    const x = pad + ((s.at - t0) / span) * (width - 2 * pad);
    const y = height - pad - (s.lagEvents / top) * (height - 2 * pad);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  chart.append(svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" }));
  chart.append(svg("polyline", { points: points.join(" "), class: "line" }));
  const maxLabel = svg("text", { x: 2, y: pad, class: "label" });
  maxLabel.textContent = String(top);
  const zero = svg("text", { x: 2, y: height - pad, class: "label" });
  zero.textContent = "0";
  const caption = svg("text", { x: width - pad, y: height - 6, "text-anchor": "end", class: "label" });
  caption.textContent = `lag (events), last ${Math.round(span / 1000)} s`;
  chart.append(maxLabel, zero, caption);
  return chart;
}
