// The inspector page's helpers: DOM and SVG builders, the API calls, error display.
// Every value the page shows comes from a store (user data): it only ever
// goes into the page as text (textContent, SVG <title> text), never as
// markup.

const SVG = "http://www.w3.org/2000/svg";

/**
 * Invisible format characters: bidi controls (U+202E makes "\u202Efdp.exe" look like "exe.pdf"),
 * zero-width characters and the like. A name or value holding one could pass for another.
 */
const INVISIBLE = /[\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF]/g;

/** `text` with every invisible format character shown as its escape (`\u202E`). */
export const visible = (text) =>
  String(text).replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`);

export const $ = (id) => document.getElementById(id);

/** An element with attributes (`text` sets its text) and children (strings become text), its text {@link visible}. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = visible(v);
    else if (k === "className") node.className = v;
    else if (k === "testid") node.dataset.testid = v;
    else node.setAttribute(k, String(v));
  }
  for (const child of children) node.append(typeof child === "string" ? visible(child) : child);
  return node;
}

/** An SVG element with attributes. */
export function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

export async function api(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, String(v));
  const response = await fetch(url, { credentials: "same-origin" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error?.message ?? `${response.status} ${response.statusText}`);
  return body;
}

export async function post(path, body) {
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

export function showError(error) {
  $("error").textContent = error ? visible(error.message ?? error) : "";
}

/** Runs `fn`, showing its error in the header. */
export function guarded(fn) {
  return (...args) =>
    Promise.resolve()
      .then(() => fn(...args))
      .catch(showError);
}

export const json = (value) => JSON.stringify(value);
export const pretty = (value) => JSON.stringify(value, null, 2);
export const shortTime = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d{3}Z$/, "Z") : "");
export const clip = (text, n = 120) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
