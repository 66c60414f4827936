// The statelog inspector's page script: targets and tabs; each view lives in
// its own module. The API is same-origin JSON; the access token travels in the
// HttpOnly cookie the server set.

import { $, api, el, guarded, showError } from "./dom.js";
import { compact, loadEntities, loadNamespaces, openNamespace, renderNamespaces, stopLive } from "./namespaces.js";
import { loadProjections } from "./projections.js";
import { state, target } from "./state.js";
import { loadEvents, loadStreams } from "./streams.js";

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

start().catch(showError);
