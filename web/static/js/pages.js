// Pages that swap under Turbo Drive (web/static/js/site.js): a module runs once per document,
// but the page it works on may be replaced many times. `onPage(init)` runs `init` on the page
// there is now and on every page Turbo swaps in; `onLeave(cleanup)` runs `cleanup` just before
// Turbo replaces the page (its elements are still in the document then). An `init` must be
// idempotent: on the first page it may run twice (now, and at Turbo's first turbo:load).

export function onPage(init) {
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => init(), { once: true });
  } else {
    init();
  }
  document.addEventListener("turbo:load", () => init());
}

export function onLeave(cleanup) {
  document.addEventListener("turbo:before-render", (event) => cleanup(event));
}

/** Run `callback` once per element: a WeakSet remembers the elements already handled. */
export function once(elements, seen, callback) {
  for (const element of elements) {
    if (seen.has(element)) continue;
    seen.add(element);
    callback(element);
  }
}
