// The player's loader: small, so that the page is readable and its play button works before
// the player's code (media-chrome, wavesurfer.js: player-core.js) has arrived.
//
// The server draws a real <button data-play-button> over each player's picture. This module
// brings player-core.js once the page has loaded and the browser is idle, or at once when
// that button is pressed; a press made before the code arrived is kept and honoured when it
// does. hls.js comes at the first play, with the stream's first bytes (streams.js), fetched
// beside the player's code rather than after it. The player's own controls take over once it
// is mounted.
import { onPage } from "./pages.js";
// Small, and needed from the first gesture: levelling's audio context starts inside it.
import "./loudness.js";
import { loadHls, mediaSourceWorks, warm } from "./streams.js";

// However busy the browser stays, the player is there this long after the page has loaded.
const IDLE_TIMEOUT_MS = 1500;

let core = null;

/** player-core.js, imported once. */
export function loadCore() {
  if (!core) {
    core = import("./player-core.js").catch((error) => {
      core = null;
      throw error;
    });
  }
  return core;
}

function schedule() {
  if (!document.querySelector("[data-player], [data-playlist]")) return;
  const go = () => loadCore().then((module) => module.initPage()).catch((error) => console.error(error));
  // Back on the page of what plays, its player takes it over at once; a collection's playlist
  // has nothing to show before its first player is on its stage.
  if (core || window.CiteLivePlayer || document.querySelector("[data-playlist]")) return go();
  const idle = () =>
    "requestIdleCallback" in window ? requestIdleCallback(go, { timeout: IDLE_TIMEOUT_MS }) : setTimeout(go, 200);
  if (document.readyState === "complete") idle();
  else window.addEventListener("load", idle, { once: true });
}

/** While the player's code is on its way: hls.js, and the stream's first bytes (streams.js). */
function headStart(root) {
  if (core && window.CiteLivePlayer) return; // the player does it
  let config;
  try {
    config = JSON.parse(root.querySelector("script[data-player-config]").textContent);
  } catch {
    return;
  }
  if (!config?.hls_url || !mediaSourceWorks()) return;
  loadHls(config.kind).catch(() => {});
  const later = config.start || new URLSearchParams(window.location.search).get("t");
  warm(config.hls_url, undefined, !later);
}

/** Play `root`'s production once the player's code is there (a press on its play button). */
function press(root) {
  root.dataset.wantsPlay = "";
  headStart(root);
  loadCore()
    .then((module) => {
      if (!root.isConnected || !("wantsPlay" in root.dataset)) return;
      delete root.dataset.wantsPlay;
      module.mount(root).play();
    })
    .catch((error) => console.error(error));
}

// One listener for every play button, those of pages swapped in later included.
document.addEventListener("click", (event) => {
  const button = event.target.closest?.("[data-play-button]");
  if (!button || event.button !== 0) return;
  const root = button.closest("[data-player]");
  if (!root) return;
  event.preventDefault();
  press(root);
});

// A press made before this script ran, which the page's inline script kept
// (cite_live/web/early_press.py): honoured now.
for (const root of document.querySelectorAll("[data-player][data-wants-play]")) press(root);

onPage(schedule);
