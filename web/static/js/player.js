// The player's loader: small, so that the page is readable and its play button works before
// the player's code (media-chrome, wavesurfer.js: player-core.js) has arrived.
//
// The server draws a real <button data-play-button> over each player's picture. This module
// brings player-core.js once the page has loaded and the browser is idle, or at once when
// that button is pressed; a press made before the code arrived is kept and honoured when it
// does. hls.js comes later still, at the first play (playback.js). The player's own controls
// take over once it is mounted.
import { onPage } from "./pages.js";
// Small, and needed from the first gesture: levelling's audio context starts inside it.
import "./loudness.js";

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

function pagePlayers() {
  return document.querySelectorAll("[data-player]");
}

function schedule() {
  if (pagePlayers().length === 0) return;
  const go = () => loadCore().then((module) => module.initPage()).catch((error) => console.error(error));
  // Back on the page of what plays: its player takes it over at once.
  if (core || window.CiteLivePlayer) return go();
  const idle = () =>
    "requestIdleCallback" in window ? requestIdleCallback(go, { timeout: IDLE_TIMEOUT_MS }) : setTimeout(go, 200);
  if (document.readyState === "complete") idle();
  else window.addEventListener("load", idle, { once: true });
}

// One listener for every play button, those of pages swapped in later included.
document.addEventListener("click", (event) => {
  const button = event.target.closest?.("[data-play-button]");
  if (!button || event.button !== 0) return;
  const root = button.closest("[data-player]");
  if (!root) return;
  event.preventDefault();
  root.dataset.wantsPlay = "";
  loadCore()
    .then((module) => {
      if (!root.isConnected || !("wantsPlay" in root.dataset)) return;
      delete root.dataset.wantsPlay;
      module.mount(root).play();
    })
    .catch((error) => console.error(error));
});

onPage(schedule);
