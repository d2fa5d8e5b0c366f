// The lasting player's bar, at the foot of every page (base.html), kept across page swaps.
//
// It shows the production that plays (picture, title and artists, linked to its page),
// play/pause, where it is, next, the queue, and the loudness switch; it is hidden until
// something plays. It is not a second player: it drives the current Player (player-core.js),
// whose one media element is on the production's page when that page is shown, and out of
// the page otherwise.
//
// The queue: "Play next" and "Add to queue" buttons (cards, the production page) name a
// production by its page's path; the bar asks /productions/SLUG/player.json for what to play.
// At the end of a production the next one in the queue plays; with an empty queue, the next one
// of the list it was started from (the [data-queue] element around the card: an artist's,
// a venue's, a tag's, a collection's productions, or a production page's related list). The
// queue and that list survive swaps and reloads (sessionStorage). A production that cannot be
// played (gone, private, still processing) is skipped with a message, never waited for.
//
// Media Session: the system's media controls (lock screen, headset keys, notification) show
// what plays and drive it.
import { formatTime } from "./timecode.js";
import { isEnabled, setEnabled, gainOf, onChange as onLevelChange } from "./loudness.js";

const STORAGE_KEY = "cl-bar";
const MAX_QUEUE = 200;
const SEEK_STEP = 10;
const PRODUCTION_PATH = /^\/productions\/[^/?#]+$/;

const bar = document.querySelector("[data-bar]");

let core = null;
let player = null; // the current Player
let listening = null; // AbortController of the listeners on its media
let state = load();

function load() {
  try {
    const saved = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || "{}");
    return {
      queue: Array.isArray(saved.queue) ? saved.queue.filter(validItem).slice(0, MAX_QUEUE) : [],
      context: Array.isArray(saved.context) ? saved.context.filter(productionPath).slice(0, MAX_QUEUE) : [],
      current: saved.current && productionPath(saved.current.path) ? saved.current : null,
    };
  } catch {
    return { queue: [], context: [], current: null };
  }
}

function save() {
  try {
    window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state));
  } catch {
    // Storage full or refused: the queue lasts as long as the page.
  }
}

/** A picture address kept in sessionStorage, used again only when it is an http(s) one. */
function safeMedia(value) {
  if (typeof value !== "string") return null;
  try {
    const url = new URL(value, window.location.origin);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

/** The bar before anything has played: the queue's first production, to be played. */
function showUpNext() {
  if (state.queue.length > 0) show({ title: state.queue[0].title, path: state.queue[0].path });
}

function validItem(item) {
  return item && typeof item.title === "string" && productionPath(item.path);
}

/** The path of a production's page on this site, from a card's attribute or a page URL; null
 * for anything else (another site, another kind of page, markup). */
export function productionPath(value) {
  if (typeof value !== "string" || value.length > 600) return null;
  let url;
  try {
    url = new URL(value, window.location.origin);
  } catch {
    return null;
  }
  if (url.origin !== window.location.origin || !PRODUCTION_PATH.test(url.pathname)) return null;
  return url.pathname;
}

function loadCore() {
  if (!core) core = import("./player-core.js");
  return core;
}

// --- what the bar shows --------------------------------------------------------------------

function text(name, title = "") {
  // A function, so that a title holding "$&" is written as it is.
  return (bar?.dataset[name] || "").replace("{title}", () => title);
}

function say(message) {
  const status = bar?.querySelector("[data-bar-status]");
  if (!status) return;
  status.textContent = "";
  // A new node each time, so that the same message twice is read twice.
  requestAnimationFrame(() => (status.textContent = message));
  status.dataset.said = message;
}

/** The bar's <img>, made the first time it is needed. */
function barPicture() {
  let image = bar.querySelector("[data-bar-cover]");
  if (!image) {
    image = document.createElement("img");
    image.alt = "";
    image.width = 48;
    image.height = 48;
    image.hidden = true;
    image.setAttribute("data-bar-cover", "");
    bar.querySelector(".cl-bar__picture").append(image);
  }
  return image;
}

function show(info) {
  if (!bar) return;
  bar.hidden = false;
  document.documentElement.classList.add("cl-bar-shown");
  const path = productionPath(info.page_url || info.path || "");
  for (const link of bar.querySelectorAll("[data-bar-link]")) link.href = path || "#";
  bar.querySelector("[data-bar-title]").textContent = info.title || "";
  bar.querySelector("[data-bar-artists]").textContent = (Array.isArray(info.artists) ? info.artists : []).join(", ");
  const cover = barPicture();
  const picture = info.cover || info.poster;
  if (picture) {
    if (cover.getAttribute("src") !== picture) cover.src = picture;
    cover.hidden = false;
  } else {
    cover.hidden = true;
    cover.removeAttribute("src");
  }
  bar.dataset.kind = info.kind || "audio";
}

function showTime() {
  if (!bar || !player) return;
  const media = player.media;
  const duration = player.duration();
  const now = media.currentTime || 0;
  const range = bar.querySelector("[data-bar-position]");
  range.max = String(Math.max(0, Math.floor(duration)));
  if (!range.matches(":active")) range.value = String(Math.floor(now));
  range.setAttribute("aria-valuetext", `${formatTime(now)} / ${formatTime(duration)}`);
  bar.querySelector("[data-bar-elapsed]").value = formatTime(now);
  bar.querySelector("[data-bar-duration]").value = formatTime(duration);
  if (state.current) state.current.time = now;
  positionState(media, duration);
}

function showPlaying() {
  if (!bar) return;
  const playing = Boolean(player && !player.media.paused);
  bar.dataset.playing = String(playing);
  bar.querySelector("[data-bar-toggle]").setAttribute("aria-label", text(playing ? "pauseText" : "playText"));
  if ("mediaSession" in navigator) navigator.mediaSession.playbackState = playing ? "playing" : "paused";
  bar.dataset.gain = String(player ? gainOf(player.media) : 1);
}

function showQueue() {
  if (!bar) return;
  const list = bar.querySelector("[data-bar-queue-list]");
  list.replaceChildren(
    ...state.queue.map((item) => {
      const entry = document.createElement("li");
      const link = document.createElement("a");
      link.href = item.path;
      link.textContent = item.title;
      entry.append(link);
      return entry;
    }),
  );
  bar.querySelector("[data-bar-queue-empty]").hidden = state.queue.length > 0;
  bar.querySelector("[data-bar-queue-clear]").hidden = state.queue.length === 0;
  bar.querySelector("[data-bar-count]").textContent = String(state.queue.length);
  bar.querySelector("[data-bar-next]").disabled = state.queue.length + state.context.length === 0;
}

// --- Media Session -------------------------------------------------------------------------

function artwork(info, image) {
  const src = info.cover || info.poster;
  if (!src) return [];
  const entry = { src, type: "image/jpeg" };
  // The real size, once the bar's picture has loaded.
  if (image && image.naturalWidth > 0) entry.sizes = `${image.naturalWidth}x${image.naturalHeight}`;
  return [entry];
}

function sessionMetadata(info) {
  if (!("mediaSession" in navigator) || typeof window.MediaMetadata !== "function") return;
  const image = bar?.querySelector("[data-bar-cover]");
  const set = () => {
    navigator.mediaSession.metadata = new MediaMetadata({
      title: info.title || "",
      artist: (info.artists || []).join(", "),
      album: "Cité Live",
      artwork: artwork(info, image),
    });
  };
  set();
  if (image && !image.complete) image.addEventListener("load", set, { once: true });
}

function positionState(media, duration) {
  if (!("mediaSession" in navigator) || !navigator.mediaSession.setPositionState) return;
  if (!(duration > 0) || !Number.isFinite(duration)) return;
  try {
    navigator.mediaSession.setPositionState({
      duration,
      playbackRate: media.playbackRate || 1,
      position: Math.min(duration, Math.max(0, media.currentTime || 0)),
    });
  } catch {
    // A position past a duration the stream corrected: the next update fixes it.
  }
}

function sessionHandlers() {
  if (!("mediaSession" in navigator)) return;
  const handlers = {
    play: () => toggle(true),
    pause: () => player?.pause(),
    seekbackward: (details) => seekBy(-(details.seekOffset || SEEK_STEP)),
    seekforward: (details) => seekBy(details.seekOffset || SEEK_STEP),
    seekto: (details) => {
      if (player && Number.isFinite(details.seekTime)) player.seek(details.seekTime);
    },
    previoustrack: () => player?.seek(0),
    nexttrack: () => next(),
  };
  for (const [action, handler] of Object.entries(handlers)) {
    try {
      navigator.mediaSession.setActionHandler(action, handler);
    } catch {
      // An action this browser does not know.
    }
  }
}

// --- playing ---------------------------------------------------------------------------------

function infoOf(config) {
  return {
    id: config.id,
    title: config.title,
    artists: config.artists || [],
    cover: config.cover,
    poster: config.poster,
    kind: config.kind,
    page_url: config.page_url,
  };
}

/** A player became the current one (player-core.js): the bar follows its media. */
function follow(chosen) {
  if (player === chosen) return;
  listening?.abort();
  player = chosen;
  listening = new AbortController();
  const { signal } = listening;
  const media = player.media;
  const info = infoOf(player.config);
  const path = productionPath(info.page_url);
  if (!state.current || state.current.path !== path) {
    state.current = {
      path,
      title: String(info.title || "").slice(0, 300),
      artists: info.artists.slice(0, 20).map((name) => String(name).slice(0, 200)),
      cover: info.cover,
      poster: info.poster,
      kind: info.kind,
      time: 0,
    };
  }
  // Started on a production page: the list to go on with is its related list.
  if (player.root.isConnected && !state.fromList) state.context = listAfter(document.querySelector("main [data-queue]"), path);
  state.fromList = false;
  save();
  show(info);
  sessionMetadata(info);
  for (const type of ["play", "playing", "pause", "volumechange"]) media.addEventListener(type, showPlaying, { signal });
  for (const type of ["timeupdate", "durationchange", "seeked"]) media.addEventListener(type, showTime, { signal });
  media.addEventListener("pause", save, { signal });
  media.addEventListener(
    "ended",
    () => {
      // A collection's playlist on the page goes on by itself (playlist.js); once its page
      // has gone, the bar goes on.
      if (media.loop || (player.root.isConnected && player.root.closest("[data-playlist]"))) return;
      next();
    },
    { signal },
  );
  showPlaying();
  showTime();
  showQueue();
}

/** Play the production whose page is `path`: the page's own player of it when the page shows
 * it, the current player when it is that one, else a player from its player.json. False when
 * it cannot be played (gone, private, not ready). */
async function playPath(path, { start = 0 } = {}) {
  const clean = productionPath(path);
  if (!clean) return false;
  const module = await loadCore();
  for (const root of document.querySelectorAll("main [data-player]")) {
    const config = JSON.parse(root.querySelector("script[data-player-config]")?.textContent || "null");
    if (config && productionPath(config.page_url) === clean) {
      const pagePlayer = module.mount(root);
      if (start > 0 && pagePlayer.media.paused) pagePlayer.seek(start, { play: true });
      else pagePlayer.play();
      return true;
    }
  }
  const current = module.currentPlayer();
  if (current && productionPath(current.config.page_url) === clean) {
    current.play();
    return true;
  }
  const data = await fetchData(clean);
  if (!data) {
    say(text("skippedText"));
    return false;
  }
  module.playData(data, { start: Number.isFinite(start) && start > 0 ? start : 0 });
  return true;
}

/** The player settings of the production at `path`, or null when it cannot be played. */
async function fetchData(path) {
  try {
    const response = await fetch(`${path}/player.json`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) return null;
    const data = await response.json();
    if (!data || !data.ready || typeof data.hls_url !== "string") return null;
    return data;
  } catch {
    return null;
  }
}

/** On to the next production: the queue's first, else the list's next; those that cannot be
 * played are skipped. */
async function next() {
  while (state.queue.length > 0 || state.context.length > 0) {
    const fromQueue = state.queue.length > 0;
    const path = fromQueue ? state.queue.shift().path : state.context.shift();
    state.fromList = !fromQueue;
    save();
    showQueue();
    if (await playPath(path)) return true;
  }
  state.fromList = false;
  return false;
}

function toggle(play) {
  if (player) {
    if (play ?? player.media.paused) player.play();
    else player.pause();
    return;
  }
  // After a reload: the production that was playing, from where it was; else the queue's first.
  if (state.current) playPath(state.current.path, { start: state.current.time });
  else next();
}

function seekBy(seconds) {
  if (player) player.seek((player.media.currentTime || 0) + seconds);
}

/** The [data-play] paths of `list` after `path` (all of them when `path` is not there). */
function listAfter(list, path) {
  if (!list) return [];
  const paths = Array.from(list.querySelectorAll("[data-play]"), (button) => productionPath(button.dataset.play)).filter(Boolean);
  const index = paths.indexOf(path);
  return paths.slice(index + 1).filter((other) => other !== path).slice(0, MAX_QUEUE);
}

async function enqueue(path, { first = false } = {}) {
  const clean = productionPath(path);
  if (!clean) return;
  const data = await fetchData(clean);
  if (!data) {
    say(text("skippedText"));
    return;
  }
  const item = { path: clean, title: String(data.title || "").slice(0, 300) };
  state.queue = state.queue.filter((queued) => queued.path !== clean);
  if (first) state.queue.unshift(item);
  else state.queue.push(item);
  state.queue = state.queue.slice(0, MAX_QUEUE);
  save();
  showQueue();
  say(text(first ? "nextText" : "addedText", item.title));
  // Nothing playing yet: the bar shows what its play button would play.
  if (!player && !state.current) showUpNext();
}

// --- the page's buttons and the bar's own, by delegation (cards rendered later work too) -----

function onClick(event) {
  if (event.defaultPrevented || event.button !== 0) return;
  const target = event.target.closest?.("[data-play], [data-play-next], [data-queue-add]");
  if (!target) return;
  event.preventDefault();
  if (target.hasAttribute("data-play")) {
    const path = productionPath(target.dataset.play);
    if (!path) return;
    state.context = listAfter(target.closest("[data-queue]"), path);
    state.fromList = true;
    save();
    playPath(path).then((played) => {
      if (!played) next();
    });
  } else if (target.hasAttribute("data-play-next")) {
    enqueue(target.dataset.playNext, { first: true });
  } else {
    enqueue(target.dataset.queueAdd);
  }
}

function setUp() {
  document.addEventListener("click", onClick);
  document.addEventListener("cl-player:current", (event) => follow(event.detail.player));
  if (!bar) return;
  bar.querySelector("[data-bar-toggle]").addEventListener("click", () => toggle());
  bar.querySelector("[data-bar-next]").addEventListener("click", () => next());
  bar.querySelector("[data-bar-queue-clear]").addEventListener("click", () => {
    state.queue = [];
    save();
    showQueue();
  });
  const range = bar.querySelector("[data-bar-position]");
  range.addEventListener("input", () => player?.seek(Number(range.value)));
  const level = bar.querySelector("[data-bar-level]");
  level.checked = isEnabled();
  level.addEventListener("change", () => setEnabled(level.checked));
  onLevelChange(() => showPlaying());
  // The production page's "Play next" and "Add to queue", and the cards' "Play" and "Add to
  // queue" (rendered hidden: without this script they would do nothing), are for script only.
  const reveal = () => {
    for (const buttons of document.querySelectorAll("[data-queue-buttons]")) delete buttons.dataset.pending;
    for (const button of document.querySelectorAll("[data-play][hidden], [data-play-next][hidden], [data-queue-add][hidden]")) {
      button.hidden = false;
    }
  };
  reveal();
  document.addEventListener("turbo:load", reveal);
  sessionHandlers();
  showQueue();
  // After a reload: what was playing, paused where it was, and the queue.
  if (state.current || state.queue.length > 0) {
    if (state.current) show({ ...state.current, cover: safeMedia(state.current.cover), poster: safeMedia(state.current.poster) });
    else showUpNext();
  }
  window.addEventListener("pagehide", save);
}

setUp();

window.CiteLiveBar = {
  get state() {
    return state;
  },
  get player() {
    return player;
  },
  playPath,
  next,
};
