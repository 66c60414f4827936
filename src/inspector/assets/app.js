// The statelog inspector's page script. Every value shown comes from a store
// (user data): it only ever goes into the page as text (textContent, SVG
// <title> text), never as markup. The API is same-origin JSON; the access
// token travels in the HttpOnly cookie the server set.

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

/** An element with attributes (`text` sets its text) and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = String(v);
    else if (k === "className") node.className = v;
    else if (k === "testid") node.dataset.testid = v;
    else node.setAttribute(k, String(v));
  }
  for (const child of children) node.append(child);
  return node;
}

/** An SVG element with attributes. */
function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

async function api(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, String(v));
  const response = await fetch(url, { credentials: "same-origin" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error?.message ?? `${response.status} ${response.statusText}`);
  return body;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error?.message ?? `${response.status} ${response.statusText}`);
  return answer;
}

function showError(error) {
  $("error").textContent = error ? String(error.message ?? error) : "";
}

/** Runs `fn`, showing its error in the header. */
function guarded(fn) {
  return (...args) =>
    Promise.resolve()
      .then(() => fn(...args))
      .catch(showError);
}

const json = (value) => JSON.stringify(value);
const pretty = (value) => JSON.stringify(value, null, 2);
const shortTime = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d{3}Z$/, "Z") : "");
const clip = (text, n = 120) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

const state = {
  overview: undefined,
  target: 0,
  view: "namespaces",
  namespaces: [],
  namespace: undefined,
  offset: 0,
  total: 0,
  selected: undefined,
  live: undefined,
  stream: undefined,
  eventsNext: undefined,
  projectionTimer: undefined,
};

const target = () => state.overview.targets[state.target];

// ---- targets and tabs ----

async function start() {
  state.overview = await api("/api/overview");
  $("mode").textContent = state.overview.allowWrites ? "writes allowed" : "read-only";
  $("mode").classList.toggle("warn", state.overview.allowWrites);
  const select = $("target");
  for (const t of state.overview.targets) select.append(el("option", { value: t.index, text: t.name }));
  select.addEventListener(
    "change",
    guarded(() => selectTarget(Number(select.value))),
  );
  for (const tab of document.querySelectorAll("#tabs button")) {
    tab.addEventListener(
      "click",
      guarded(() => showView(tab.dataset.view)),
    );
  }
  $("ns-filter").addEventListener("input", renderNamespaces);
  $("ns-open").addEventListener(
    "submit",
    guarded((e) => {
      e.preventDefault();
      const name = $("ns-name").value.trim();
      if (name) return openNamespace(name);
    }),
  );
  let searchTimer;
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(
      guarded(() => {
        state.offset = 0;
        return loadEntities();
      }),
      200,
    );
  });
  for (const id of ["type-filter", "show-deleted"]) {
    $(id).addEventListener(
      "change",
      guarded(() => {
        state.offset = 0;
        return loadEntities();
      }),
    );
  }
  $("prev").addEventListener(
    "click",
    guarded(() => {
      state.offset = Math.max(0, state.offset - state.overview.pageSize);
      return loadEntities();
    }),
  );
  $("next").addEventListener(
    "click",
    guarded(() => {
      state.offset += state.overview.pageSize;
      return loadEntities();
    }),
  );
  $("compact").addEventListener("click", guarded(compact));
  $("more-events").addEventListener(
    "click",
    guarded(() => loadEvents(true)),
  );
  await selectTarget(0);
}

async function selectTarget(index) {
  state.target = index;
  stopLive();
  const t = target();
  const views = { namespaces: !!t.store, streams: !!t.eventStore, projections: t.readModels };
  for (const tab of document.querySelectorAll("#tabs button")) tab.disabled = !views[tab.dataset.view];
  const first = views[state.view] ? state.view : Object.keys(views).find((v) => views[v]);
  state.namespace = undefined;
  state.stream = undefined;
  await showView(first);
}

async function showView(view) {
  state.view = view;
  for (const tab of document.querySelectorAll("#tabs button")) {
    tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  }
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `view-${view}`;
  clearInterval(state.projectionTimer);
  showError(undefined);
  if (view === "namespaces") await loadNamespaces();
  if (view === "streams") await loadStreams();
  if (view === "projections") {
    await loadProjections();
    state.projectionTimer = setInterval(guarded(loadProjections), 2000);
  }
}

// ---- namespaces, entities, history ----

async function loadNamespaces() {
  const t = target();
  const { namespaces } = await api("/api/namespaces", { target: t.index });
  state.namespaces = namespaces ?? [];
  $("ns-open").hidden = namespaces !== null && namespaces !== undefined;
  $("ns-filter").hidden = !$("ns-open").hidden;
  $("compact").hidden = !t.store.compact;
  renderNamespaces();
  if (state.namespace === undefined && state.namespaces.length > 0) await openNamespace(state.namespaces[0]);
}

function renderNamespaces() {
  const filter = $("ns-filter").value.toLowerCase();
  const list = $("ns-list");
  list.replaceChildren();
  for (const ns of state.namespaces) {
    if (filter && !ns.toLowerCase().includes(filter)) continue;
    const button = el("button", { type: "button", text: ns, className: ns === state.namespace ? "active" : "" });
    button.addEventListener(
      "click",
      guarded(() => openNamespace(ns)),
    );
    list.append(el("li", {}, button));
  }
  if (state.namespaces.length === 0 && $("ns-open").hidden) list.append(el("li", { className: "muted", text: "none" }));
}

async function openNamespace(ns) {
  state.namespace = ns;
  state.offset = 0;
  state.selected = undefined;
  $("detail").hidden = true;
  $("ns-title").textContent = ns;
  $("search").disabled = false;
  $("type-filter").disabled = false;
  $("search").value = "";
  $("type-filter").replaceChildren(el("option", { value: "", text: "all types" }));
  $("live").replaceChildren();
  renderNamespaces();
  await loadEntities();
  startLive();
}

/** Numbers each request of a kind: an answer that arrives after a newer request was made is dropped. */
const latest = { entities: 0, history: 0, events: 0 };

async function loadEntities() {
  if (state.namespace === undefined) return;
  const t = target();
  const seq = ++latest.entities;
  const answer = await api("/api/entities", {
    target: t.index,
    namespace: state.namespace,
    q: $("search").value,
    type: $("type-filter").value,
    deleted: $("show-deleted").checked ? 1 : 0,
    offset: state.offset,
  });
  if (seq !== latest.entities) return;
  state.total = answer.total;
  const typeFilter = $("type-filter");
  const chosen = typeFilter.value;
  typeFilter.replaceChildren(el("option", { value: "", text: "all types" }));
  for (const type of answer.types) {
    typeFilter.append(el("option", { value: type.name, text: `${type.name} (${type.count})` }));
  }
  typeFilter.value = answer.types.some((ty) => ty.name === chosen) ? chosen : "";
  const body = $("entities").tBodies[0];
  body.replaceChildren();
  for (const item of answer.items) {
    const row = el(
      "tr",
      { className: item.changeType === "unset" ? "deleted" : "" },
      el("td", { text: item.entityType }),
      el("td", { text: item.entityId }),
      el("td", { text: shortTime(item.timestamp) }),
      el("td", { className: "value", text: item.changeType === "unset" ? "(deleted)" : clip(json(item.entity)) }),
    );
    row.addEventListener(
      "click",
      guarded(() => showEntity(item)),
    );
    body.append(row);
  }
  const last = state.offset + answer.items.length;
  $("count").textContent =
    answer.total === 0 ? "No entities match." : `${state.offset + 1}–${last} of ${answer.total} entities`;
  $("prev").disabled = state.offset === 0;
  $("next").disabled = last >= answer.total;
}

async function showEntity(item) {
  state.selected = item;
  $("detail").hidden = false;
  $("detail-title").textContent = `${item.entityType} / ${item.entityId}`;
  $("detail-value").textContent = item.changeType === "unset" ? "(deleted)" : pretty(item.entity);
  $("history").replaceChildren();
  $("history-note").textContent = "Reading…";
  const seq = ++latest.history;
  const answer = await api("/api/history", {
    target: target().index,
    namespace: state.namespace,
    entityType: item.entityType,
    entityId: item.entityId,
  });
  if (seq !== latest.history) return;
  if (!answer.available) {
    $("history-note").textContent = `No history: ${answer.reason}.`;
    return;
  }
  const n = answer.changes.length;
  $("history-note").textContent =
    n <= 1
      ? "The store holds only the latest change of this entity (superseded changes are dropped when a store compacts; a memory store keeps none)."
      : `${n} changes held by the store, oldest first${answer.truncated ? " (the latest ones)" : ""}.`;
  for (const c of answer.changes) {
    $("history").append(
      el(
        "li",
        { className: c.changeType },
        el("span", { className: "when", text: `${shortTime(c.timestamp)} · #${c.position}` }),
        el("span", { className: "op", text: c.changeType }),
        el("code", { text: c.changeType === "set" ? clip(json(c.entity), 400) : "" }),
      ),
    );
  }
}

async function compact() {
  await post("/api/compact", { target: target().index, namespace: state.namespace });
  await loadEntities();
}

// ---- live feed (Server-Sent Events) ----

function setLiveState(text) {
  $("live-state").textContent = text;
  $("live-state").classList.toggle("ok", text === "live");
}

function stopLive() {
  state.live?.close();
  state.live = undefined;
  setLiveState("off");
}

function startLive() {
  stopLive();
  const t = target();
  if (!t.store.watch) {
    setLiveState("not available");
    return;
  }
  const url = new URL("/api/live", location.origin);
  url.searchParams.set("target", t.index);
  url.searchParams.set("namespace", state.namespace);
  const source = new EventSource(url);
  state.live = source;
  setLiveState("connecting");
  let reload;
  const refresh = () => {
    clearTimeout(reload);
    reload = setTimeout(guarded(loadEntities), 150);
  };
  source.addEventListener("caught-up", () => {
    setLiveState("live");
    refresh();
  });
  source.addEventListener("change", (e) => {
    const c = JSON.parse(e.data);
    const list = $("live");
    list.prepend(
      el(
        "li",
        { className: c.changeType },
        el("span", { className: "when", text: shortTime(c.timestamp) }),
        el("span", { className: "op", text: c.changeType }),
        el("span", { className: "key", text: `${c.entityType}/${c.entityId}` }),
        el("code", { text: c.changeType === "set" ? clip(json(c.entity)) : "" }),
      ),
    );
    while (list.children.length > 100) list.lastElementChild.remove();
    refresh();
  });
  source.addEventListener("feed-error", (e) => {
    setLiveState("stopped");
    showError(new Error(`live feed: ${JSON.parse(e.data).message}`));
    source.close();
  });
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.CLOSED) setLiveState("reconnecting");
  });
}

// ---- event streams ----

async function loadStreams() {
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

async function openStream(streamId) {
  state.stream = streamId;
  state.eventsNext = undefined;
  state.events = [];
  for (const b of $("stream-list").querySelectorAll("button")) {
    b.classList.toggle("active", b.firstChild.textContent === streamId);
  }
  $("events").tBodies[0].replaceChildren();
  await loadEvents(false);
}

async function loadEvents(more) {
  const seq = ++latest.events;
  const answer = await api("/api/events", {
    target: target().index,
    stream: state.stream,
    after: more ? state.eventsNext : 0,
  });
  if (seq !== latest.events) return;
  const s = answer.stream;
  $("stream-title").textContent =
    `${s.streamId}: ${s.eventCount} events (positions ${s.firstPosition}–${s.lastPosition})`;
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
    title.textContent = `#${e.position} ${e.type} at ${e.timestamp}`;
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
    label.textContent = `● ${clip(type, 18)}`;
    chart.append(label);
  });
  box.append(chart);
}

// ---- projections ----

async function loadProjections() {
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

start().catch(showError);
