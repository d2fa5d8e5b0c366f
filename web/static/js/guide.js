// The live example of the partners' guide: the player.js client (the npm package partners use,
// loaded just before this module) drives the framed player as a partner's page would, and
// the events the player sends are listed as they arrive.
import { formatTime } from "./timecode.js";

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

const root = document.querySelector("[data-guide-try]");
if (root && window.playerjs) start(root);
