// "My productions": the upload panel, and the list kept up to date while recordings process.
//
// While anything is queued or running, GET /api/v1/me/productions is polled every 2 s. Progress
// bars are moved in place; when a row's state changes (or a production appears or leaves), the
// list is fetched again as HTML from this same page, so that every row is drawn by the one
// template that draws it on the server, in the page's language.
import { startUploaders } from "./uploader.js";

const POLL_MS = 2000;
// After an upload completes, keep looking for its production this long even if nothing else
// is processing (the server creates it as the last byte arrives; this only covers a slow link).
const EXPECT_MS = 20000;
const ACTIVE = new Set(["queued", "running"]);

const lang = document.documentElement.lang || "fr";
const percent = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 });
let timer = null;
let expectUntil = 0;
let polling = false;

function list() {
  return document.querySelector("[data-studio-list]");
}

function signature(item) {
  return `${item.status}|${item.visibility}|${item.job ? item.job.state : ""}`;
}

function rowsOf(root) {
  return new Map(Array.from(root.querySelectorAll("[data-id]"), (row) => [row.dataset.id, row]));
}

function anyActiveRow() {
  const root = list();
  return Boolean(root && root.querySelector('[data-state="queued"], [data-state="running"]'));
}

async function redrawList() {
  const response = await fetch(window.location.href, {
    credentials: "same-origin",
    headers: { Accept: "text/html" },
    cache: "no-store",
  });
  if (!response.ok) return;
  const fresh = new DOMParser()
    .parseFromString(await response.text(), "text/html")
    .querySelector("[data-studio-list]");
  const current = list();
  if (fresh && current) current.replaceWith(document.adoptNode(fresh));
}

function moveProgress(row, job) {
  const bar = row.querySelector("[data-progress]");
  if (!bar || !job) return;
  bar.value = job.progress;
  bar.textContent = percent.format(job.progress);
  const text = row.querySelector("[data-percent]");
  if (text) text.textContent = percent.format(job.progress);
}

async function poll() {
  timer = null;
  const root = list();
  if (!root || polling) return;
  polling = true;
  let active = false;
  try {
    const response = await fetch(root.dataset.statusUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`status ${response.status}`);
    const { items } = await response.json();
    const rows = rowsOf(root);
    const changed =
      items.length !== rows.size ||
      items.some((item) => rows.get(item.id)?.dataset.signature !== signature(item));
    if (changed) {
      await redrawList();
    } else {
      for (const item of items) moveProgress(rows.get(item.id), item.job);
    }
    active = items.some((item) => item.job && ACTIVE.has(item.job.state));
  } catch (error) {
    // A dropped connection: keep trying at the same pace while something is processing.
    active = anyActiveRow();
    console.warn("could not refresh the list of productions", error);
  } finally {
    polling = false;
  }
  if (active || Date.now() < expectUntil) schedule();
}

function schedule(delay = POLL_MS) {
  if (timer === null && document.visibilityState === "visible") {
    timer = window.setTimeout(poll, delay);
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && (anyActiveRow() || Date.now() < expectUntil)) {
    schedule(0);
  }
});

// The replace page's panel says where to go once its file is sent.
const returnTo = document.querySelector("[data-uploader][data-single]")?.dataset.returnUrl ?? null;

startUploaders({
  onUploaded() {
    if (returnTo && !list()) {
      // The replace page: back to the list, where the new processing shows.
      window.location.assign(returnTo);
      return;
    }
    expectUntil = Date.now() + EXPECT_MS;
    schedule(0);
  },
});

if (anyActiveRow()) schedule();
