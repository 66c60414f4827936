// The page's state, shared by its views.

export const state = {
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

export const target = () => state.overview.targets[state.target];

/** Numbers each request of a kind: an answer that arrives after a newer request was made is dropped. */
export const latest = { entities: 0, history: 0, events: 0 };
