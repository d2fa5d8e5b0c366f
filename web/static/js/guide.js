// The live example of the partners' guide: the player.js client (the npm package partners use,
// loaded just before this module) drives the framed player as a partner's page would, and
// the events the player sends are listed as they arrive.
import { formatTime } from "./timecode.js";
import { onPage, once } from "./pages.js";

const LOG_LENGTH = 8;
const SKIP = 10;
const EVENTS = ["play", "pause", "ended", "seeked", "error"];

function start(root) {
  const frame = root.querySelector("iframe");
  const log = root.querySelector("[data-guide-log]");
  const time = root.querySelector("[data-guide-time]");
  const buttons = root.querySelectorAll("[data-command]");
  const player = new window.playerjs.Player(frame);
  let position = 0;

  const note = (name, detail) => {
    const item = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = detail === undefined ? name : `${name} ${JSON.stringify(detail)}`;
    item.append(code);
    log.prepend(item);
    while (log.children.length > LOG_LENGTH) log.lastElementChild.remove();
  };

  player.on("ready", () => {
    note("ready");
    for (const button of buttons) button.disabled = false;
    for (const name of EVENTS) player.on(name, (detail) => note(name, detail));
    player.on("timeupdate", (detail) => {
      position = detail.seconds;
      time.value = formatTime(detail.seconds);
    });
  });

  root.addEventListener("click", (event) => {
    const button = event.target.closest("[data-command]");
    if (!button) return;
    const command = button.dataset.command;
    if (command === "back") player.setCurrentTime(Math.max(0, position - SKIP));
    else if (command === "forward") player.setCurrentTime(position + SKIP);
    else player[command]();
  });
}

// The guide's page may be swapped in (pages.js): the player.js client, a classic script of its
// <head>, may then arrive after this module.
const started = new WeakSet();
function startWhenReady(root) {
  if (window.playerjs) return start(root);
  const client = document.querySelector('script[src*="player.js/player-"]');
  client?.addEventListener("load", () => window.playerjs && start(root), { once: true });
}
onPage(() => once(document.querySelectorAll("[data-guide-try]"), started, startWhenReady));
