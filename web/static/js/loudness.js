// Loudness levelling: each production comes to about -16 LUFS, whatever it was mixed at, so
// that a quiet rehearsal after a loud concert needs no hand on the volume.
//
// The integrated loudness (EBU R128) is measured at ingest and comes with the player's settings
// (`loudness_lufs`). A Web Audio GainNode sits between the media element and the speakers;
// a boost is capped (+6 dB: more would mostly raise the noise floor and clip peaks), a cut is
// not. The AudioContext is created, or resumed, inside the listener's gesture (a click, a key,
// a touch), as browsers require; a media element is only routed through it once it runs, so
// that a refused context never silences a player. Levelling may be switched off (the bar's
// switch); the choice is kept in localStorage.

const TARGET_LUFS = -16;
const MAX_BOOST_DB = 6;
const STORAGE_KEY = "cl-loudness";

let context = null;
const routes = new Map(); // media element -> { gain: GainNode, lufs }
const waiting = new Map(); // media element -> lufs, routed once the context runs
const listeners = new Set();

function readEnabled() {
  try {
    return window.localStorage.getItem(STORAGE_KEY) !== "off";
  } catch {
    return true;
  }
}

let enabled = readEnabled();

/** The gain that brings `lufs` to the target: 1 when unknown, at most +6 dB. */
export function gainFor(lufs) {
  if (typeof lufs !== "number" || !Number.isFinite(lufs)) return 1;
  const decibels = Math.min(MAX_BOOST_DB, TARGET_LUFS - lufs);
  return 10 ** (decibels / 20);
}

export function isEnabled() {
  return enabled;
}

export function setEnabled(value) {
  enabled = Boolean(value);
  try {
    window.localStorage.setItem(STORAGE_KEY, enabled ? "on" : "off");
  } catch {
    // Storage refused (private mode): the choice lasts as long as the page.
  }
  for (const [, route] of routes) route.gain.gain.value = enabled ? gainFor(route.lufs) : 1;
  for (const listener of listeners) listener(enabled);
}

export function onChange(listener) {
  listeners.add(listener);
}

/** The gain applied to `media` now (1 when it is not routed). */
export function gainOf(media) {
  const route = routes.get(media);
  return route ? route.gain.gain.value : 1;
}

function connect(media, lufs) {
  const known = routes.get(media);
  if (known) {
    known.lufs = lufs;
    known.gain.gain.value = enabled ? gainFor(lufs) : 1;
    return;
  }
  try {
    const source = context.createMediaElementSource(media);
    const gain = context.createGain();
    gain.gain.value = enabled ? gainFor(lufs) : 1;
    source.connect(gain).connect(context.destination);
    routes.set(media, { gain, lufs });
    media.dataset.levelled = "";
  } catch (error) {
    // Already routed by another context, or refused: it plays as it is.
    console.warn(error);
  }
}

/** Create or resume the AudioContext: call inside a gesture. */
export function wake() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  if (!context) {
    context = new Context();
    context.addEventListener("statechange", () => {
      if (context.state !== "running") return;
      for (const [media, lufs] of waiting) connect(media, lufs);
      waiting.clear();
    });
  }
  if (context.state === "suspended") context.resume().catch(() => {});
  if (context.state === "running") {
    for (const [media, lufs] of waiting) connect(media, lufs);
    waiting.clear();
  }
}

/** Level `media` (whose loudness is `lufs`) from now on: at once when the context runs, else
 * at the listener's next gesture. */
export function level(media, lufs) {
  if (routes.has(media) || context?.state === "running") connect(media, lufs);
  else waiting.set(media, lufs);
}

// Every gesture of the page may start or resume the context; the capture phase sees them
// before any control acts on them, so the context runs by the time a play button plays.
for (const type of ["pointerdown", "keydown", "touchend", "click"]) {
  document.addEventListener(type, wake, { capture: true, passive: true });
}
