// The page's players (playback.js is one player): hls.js feeding a <video> or <audio> dressed
// by media-chrome, the waveform of audio productions, deep links (?t= and [data-seek]), the
// share panel, and in an embed the player.js protocol its partner page drives it with
// (playerjs.js).
//
// No media byte before play: the picture, the duration, the waveform's peaks and the
// storyboard come with the page, but the playlist is only asked for when someone wants to hear
// it — the play button, a key, autoplay, a setlist link, or the partner page's play or seek.
// A listener scrolling past ten embeds costs them ten pictures, not ten videos' first segments.
//
// One at a time: a player that starts pauses the others of the page, and those of the other
// embeds of this site framed by the same page (the frames of one origin can reach each other).
//
// Other scripts (a playlist embed) mount players themselves: `mount(root)` returns a Player,
// `destroy()` stops it; a [data-player] inside a <template> is left alone until mounted. A
// Player announces itself on its root with bubbling events: cl-player:play, cl-player:pause,
// cl-player:ended and cl-player:error, `detail.player` being the Player.
import { Hls, Player } from "./playback.js";
import { parseTime } from "./timecode.js";
import { initSharePanels } from "./share.js";
import { connect } from "./playerjs.js";

export { Player };

const players = [];
const mounted = new WeakMap();

/** The Player of `root` (a [data-player] element), started; the same one when mounted already. */
export function mount(root) {
  const known = mounted.get(root);
  if (known) return known;
  const player = new Player(root, { onPlay: pauseOthers, onDestroy: forget });
  mounted.set(root, player);
  players.push(player);
  player.start().catch((error) => {
    console.error(error);
    player.fail();
  });
  return player;
}

function forget(player) {
  mounted.delete(player.root);
  const index = players.indexOf(player);
  if (index >= 0) players.splice(index, 1);
}

/** The windows of the same page where other players of this site may be: the framing page,
 * and every frame it holds. Another site's windows cannot be read and are skipped. */
function neighbours() {
  const page = window.parent;
  const found = [];
  const candidates = [page];
  for (let index = 0; index < page.length; index += 1) candidates.push(page[index]);
  for (const candidate of candidates) {
    if (candidate === window) continue;
    try {
      if (Array.isArray(candidate.CiteLivePlayer?.players)) found.push(candidate.CiteLivePlayer);
    } catch {
      // Another origin's window.
    }
  }
  return found;
}

function pauseOthers(playing) {
  for (const player of players) if (player !== playing) player.pause();
  for (const other of neighbours()) for (const player of other.players) player.pause();
}

// Links and buttons carrying data-seek (a setlist entry, a time code in a description) seek the
// page's player instead of reloading the page; their href (?t=) still works without script.
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const trigger = event.target.closest?.("[data-seek]");
  const player = players[0];
  if (!trigger || !player) return;
  const seconds = parseTime(trigger.getAttribute("data-seek"));
  if (seconds === null) return;
  event.preventDefault();
  player.seek(seconds, { play: true });
  player.root.scrollIntoView({ block: "nearest", behavior: "smooth" });
});

// The page's players; those inside a <template> are not in the document, and wait for mount().
for (const root of document.querySelectorAll("[data-player]")) mount(root);

// An embed on its own answers the page framing it (player.js).
if (window.parent !== window && players.length === 1 && players[0].config.embed) {
  players[0].receiver = connect(players[0], { allowed: players[0].config.embed_origins ?? null });
}

initSharePanels((id) => players.find((player) => player.id === id));

window.CiteLivePlayer = { players, mount, Hls };
window.Hls = Hls;
