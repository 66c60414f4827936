// The namespaces view: namespaces, entities with search, an entity's history,
// compact, and the live feed of the open namespace (Server-Sent Events).

import { $, api, clip, el, guarded, json, post, pretty, shortTime, showError, visible } from "./dom.js";
import { latest, state, target } from "./state.js";

export async function loadNamespaces() {
  const t = target();
  const { namespaces } = await api("/api/namespaces", { target: t.index });
  state.namespaces = namespaces ?? [];
  $("ns-open").hidden = namespaces !== null && namespaces !== undefined;
  $("ns-filter").hidden = !$("ns-open").hidden;
  $("compact").hidden = !t.store.compact;
  renderNamespaces();
  if (state.namespace === undefined && state.namespaces.length > 0) await openNamespace(state.namespaces[0]);
}

export function renderNamespaces() {
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

export async function openNamespace(ns) {
  state.namespace = ns;
  state.offset = 0;
  state.selected = undefined;
  $("detail").hidden = true;
  $("ns-title").textContent = visible(ns);
  $("notice").textContent = "";
  $("search").disabled = false;
  $("type-filter").disabled = false;
  $("search").value = "";
  $("type-filter").replaceChildren(el("option", { value: "", text: "all types" }));
  $("live").replaceChildren();
  renderNamespaces();
  await loadEntities();
  startLive();
}

export async function loadEntities() {
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
  $("detail-title").textContent = visible(`${item.entityType} / ${item.entityId}`);
  $("detail-value").textContent = item.changeType === "unset" ? "(deleted)" : visible(pretty(item.entity));
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
  if (answer.note) $("history-note").textContent += ` ${answer.note}`;
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

export async function compact() {
  const ns = state.namespace;
  const question = `Compact namespace ${ns}? The superseded changes of its entities (their history) are removed.`;
  if (!confirm(question)) return;
  $("notice").textContent = visible(`Compacting ${ns}…`);
  await post("/api/compact", { target: target().index, namespace: ns });
  $("notice").textContent = visible(`Compacted ${ns}.`);
  await loadEntities();
  if (state.selected) await showEntity(state.selected);
}

// ---- live feed (Server-Sent Events) ----

function setLiveState(text) {
  $("live-state").textContent = text;
  $("live-state").classList.toggle("ok", text === "live");
}

export function stopLive() {
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
    // The entity on show changed (or was deleted): show its new value and history.
    const shown = state.selected;
    if (shown && shown.entityType === c.entityType && shown.entityId === c.entityId) guarded(showEntity)(c);
  });
  source.addEventListener("feed-error", (e) => {
    setLiveState("stopped");
    showError(new Error(`live feed: ${JSON.parse(e.data).message}`));
    source.close();
  });
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.CLOSED) {
      setLiveState("reconnecting");
      return;
    }
    // The server refused the feed (too many open, the store closed…): the browser does not retry; say why.
    setLiveState("not available");
    liveRefusal(url)
      .then((reason) => {
        if (state.live === source) showError(new Error(`live feed not available: ${reason}`));
      })
      .catch(showError);
  });
}

/** Why the server refuses the live feed at `url` (asked once more, since an EventSource does not tell). */
async function liveRefusal(url) {
  const abort = new AbortController();
  try {
    const response = await fetch(url, { credentials: "same-origin", signal: abort.signal });
    if (response.ok) return "the server ended it; open the namespace again to follow it";
    const body = await response.json().catch(() => ({}));
    return body.error?.message ?? `${response.status} ${response.statusText}`;
  } finally {
    abort.abort();
  }
}
