// The event streams view: streams, their events and a timeline.

import { $, api, clip, el, guarded, json, shortTime, svg, visible } from "./dom.js";
import { latest, state, target } from "./state.js";

export async function loadStreams() {
  const answer = await api("/api/streams", { target: target().index });
  $("stream-stats").textContent =
    `${answer.name}: ${answer.streams.length} streams, ${answer.totalEvents} events, last global position ${answer.globalPosition}`;
  const list = $("stream-list");
  list.replaceChildren();
  for (const s of answer.streams) {
    const button = el(
      "button",
      { type: "button", className: s.streamId === state.stream ? "active" : "" },
      el("span", { text: s.streamId }),
      el("span", { className: "muted", text: ` ${s.eventCount}` }),
    );
    button.addEventListener(
      "click",
      guarded(() => openStream(s.streamId)),
    );
    list.append(el("li", {}, button));
  }
  if (answer.streams.length === 0) list.append(el("li", { className: "muted", text: "no streams" }));
  if (state.stream === undefined && answer.streams.length > 0) await openStream(answer.streams[0].streamId);
}

export async function openStream(streamId) {
  state.stream = streamId;
  state.eventsNext = undefined;
  state.events = [];
  for (const b of $("stream-list").querySelectorAll("button")) {
    b.classList.toggle("active", b.firstChild.textContent === visible(streamId));
  }
  $("events").tBodies[0].replaceChildren();
  await loadEvents(false);
}

export async function loadEvents(more) {
  const seq = ++latest.events;
  const answer = await api("/api/events", {
    target: target().index,
    stream: state.stream,
    after: more ? state.eventsNext : 0,
  });
  if (seq !== latest.events) return;
  const s = answer.stream;
  $("stream-title").textContent = visible(
    `${s.streamId}: ${s.eventCount} events (positions ${s.firstPosition}–${s.lastPosition})`,
  );
  state.events.push(...answer.events);
  state.eventsNext = answer.next;
  $("more-events").hidden = answer.next === undefined;
  const body = $("events").tBodies[0];
  for (const e of answer.events) {
    body.append(
      el(
        "tr",
        {},
        el("td", { text: e.position }),
        el("td", { text: e.globalPosition }),
        el("td", { text: e.type }),
        el("td", { text: shortTime(e.timestamp) }),
        el("td", { className: "value", text: clip(json(e.data), 200) }),
      ),
    );
  }
  drawTimeline(state.events);
}

/** A timeline of events: one mark per event at its time, a colour per event type. */
function drawTimeline(events) {
  const box = $("timeline");
  box.replaceChildren();
  if (events.length === 0) return;
  const width = 800;
  const height = 90;
  const pad = 16;
  const times = events.map((e) => Date.parse(e.timestamp));
  const min = Math.min(...times);
  const max = Math.max(...times);
  const span = Math.max(max - min, 1);
  const types = [...new Set(events.map((e) => e.type))];
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "event timeline" });
  chart.append(svg("line", { x1: pad, y1: 50, x2: width - pad, y2: 50, class: "axis" }));
  events.forEach((e, i) => {
    const x = pad + ((times[i] - min) / span) * (width - 2 * pad);
    const mark = svg("circle", { cx: x.toFixed(1), cy: 50, r: 5, class: `mark c${types.indexOf(e.type) % 8}` });
    const title = svg("title");
    title.textContent = visible(`#${e.position} ${e.type} at ${e.timestamp}`);
    mark.append(title);
    chart.append(mark);
  });
  for (const [x, text, anchor] of [
    [pad, shortTime(new Date(min).toISOString()), "start"],
    [width - pad, shortTime(new Date(max).toISOString()), "end"],
  ]) {
    const label = svg("text", { x, y: 80, "text-anchor": anchor, class: "label" });
    label.textContent = text;
    chart.append(label);
  }
  types.forEach((type, i) => {
    const label = svg("text", { x: pad + i * 130, y: 20, class: `label legend c${i % 8}` });
    label.textContent = visible(`● ${clip(type, 18)}`);
    chart.append(label);
  });
  box.append(chart);
}
