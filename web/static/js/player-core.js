// The page's players (playback.js is one player): hls.js feeding a <video> or <audio> dressed
// by media-chrome, the waveform of audio productions, deep links (?t= and [data-seek]), the
// share panel, and in an embed the player.js protocol its partner page drives it with
// (playerjs.js). player.js, a small loader, brings this module after the page is readable or
// at the first press of a play button.
//
// No media byte before play: the picture, the duration, the waveform's peaks and the
// storyboard come with the page, but the playlist is only asked for when someone wants to hear
// it — the play button, a key, autoplay, a setlist link, or the partner page's play or seek.
// A listener scrolling past ten embeds costs them ten pictures, not ten videos' first segments.
//
// One at a time: a player that starts pauses the others of the page, and those of the other
// embeds of this site framed by the same page (the frames of one origin can reach each other).
//
// One lasting player across page swaps (Turbo Drive, site.js): the player that played last is
// the current one, which the bar at the foot of the page shows (bar.js). When the page holding
// it goes, its media element moves out of <body> (which Turbo replaces) and plays on; back on
// that production's page, the page's player gets that very element. The bar plays productions
// without their page too (`playData`, from /productions/SLUG/player.json).
//
// A collection's playlist (playlist.js) and the bar mount players themselves: `mount(root)` returns a Player,
// `destroy()` stops it; a [data-player] inside a <template> is left alone until mounted. A
// Player announces itself on its root with bubbling events: cl-player:play, cl-player:pause,
// cl-player:ended and cl-player:error, `detail.player` being the Player; the document hears
// cl-player:current when another player becomes the current one.
import { Player, loadHls } from "./playback.js";
import { parseTime } from "./timecode.js";
import { initSharePanels } from "./share.js";
import { connect } from "./playerjs.js";
import { onPage, onLeave } from "./pages.js";
import { initPlaylists } from "./playlist.js";

export { Player, loadHls };

const players = [];
const mounted = new WeakMap();
const sharePanels = new WeakSet();
let current = null;

function configOf(root) {
  try {
    return JSON.parse(root.querySelector("script[data-player-config]").textContent);
  } catch {
    return null;
  }
}

/** Where a player's media element waits while no page shows it: a hidden box outside <body>,
 * which Turbo replaces at each swap (a media element taken out of the document stops). */
export function mediaHome() {
  let home = document.querySelector("[data-cl-media-home]");
  if (!home) {
    home = document.createElement("div");
    home.hidden = true;
    home.setAttribute("data-cl-media-home", "");
    document.documentElement.append(home);
  }
  return home;
}

/** Is `player` shown by a player of the page (rather than heard from the bar)? */
function onThePage(player) {
  return player.root.isConnected && player.root.contains(player.media);
}

/** The player that played last (the bar's), or null. */
export function currentPlayer() {
  return current && !current.destroyed ? current : null;
}

/** The Player of `root` (a [data-player] element), started; the same one when mounted already.
 * The production that plays, coming back to its page: the player that plays it, moved in. */
export function mount(root) {
  const known = mounted.get(root);
  if (known) return known;
  const playing = currentPlayer();
  if (playing && !onThePage(playing) && configOf(root)?.id === playing.id) {
    playing.rehome(root);
    mounted.set(root, playing);
    return playing;
  }
  const player = new Player(root, { onPlay, onDestroy: forget });
  mounted.set(root, player);
  players.push(player);
  player.start().catch((error) => {
    console.error(error);
    player.fail();
  });
  return player;
}

/** Play a production the page does not show (the bar, a card, the queue): `data` is its
 * /productions/SLUG/player.json. Its media element waits in mediaHome() until a page shows it. */
export function playData(data, { start = 0 } = {}) {
  const playing = currentPlayer();
  if (playing && playing.id === data.id) {
    playing.play();
    return playing;
  }
  const root = document.createElement("div");
  root.setAttribute("data-bar-player", "");
  const config = document.createElement("script");
  config.type = "application/json";
  config.setAttribute("data-player-config", "");
  config.textContent = JSON.stringify({
    ...data,
    embed: false,
    // From the start (or `start`), whatever the page's own ?t= says.
    start,
    autoplay: false,
    loop: false,
    color: null,
  });
  const media = document.createElement(data.kind === "video" ? "video" : "audio");
  media.crossOrigin = "anonymous";
  media.preload = "none";
  media.slot = "media";
  if (data.kind === "video") {
    media.playsInline = true;
    if (data.poster) media.poster = data.poster;
  }
  root.append(config, media);
  const player = new Player(root, { onPlay, onDestroy: forget });
  players.push(player);
  mediaHome().append(media);
  player.start().catch((error) => {
    console.error(error);
    player.fail();
  });
  player.play();
  return player;
}

function onPlay(player) {
  pauseOthers(player);
  if (current === player) return;
  const previous = current;
  current = player;
  // A player no page shows and that is no longer the bar's: nothing can play it again.
  if (previous && !previous.destroyed && !onThePage(previous)) previous.destroy();
  document.dispatchEvent(new CustomEvent("cl-player:current", { detail: { player } }));
}

function forget(player) {
  if (mounted.get(player.root) === player) mounted.delete(player.root);
  const index = players.indexOf(player);
  if (index >= 0) players.splice(index, 1);
  if (current === player) current = null;
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

/** The first player the page shows. */
function pagePlayer() {
  return players.find((player) => onThePage(player) && document.body.contains(player.root)) ?? null;
}

// Links and buttons carrying data-seek (a setlist entry, a time code in a description) seek the
// page's player instead of loading the page again; their href (?t=) still works without script.
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const trigger = event.target.closest?.("[data-seek]");
  const player = pagePlayer();
  if (!trigger || !player) return;
  const seconds = parseTime(trigger.getAttribute("data-seek"));
  if (seconds === null) return;
  event.preventDefault();
  player.seek(seconds, { play: true });
  player.root.scrollIntoView({ block: "nearest", behavior: "smooth" });
});

/** Mount the players of the page there is now (those inside a <template> wait for mount(): a
 * collection's playlist mounts the one on its stage), and bind its share panels. */
export function initPage() {
  for (const root of document.querySelectorAll("[data-player]")) mount(root);
  initPlaylists(mount);
  const panels = Array.from(document.querySelectorAll("[data-share-panel]"));
  if (panels.some((panel) => !sharePanels.has(panel))) {
    for (const panel of panels) sharePanels.add(panel);
    initSharePanels((id) => players.find((player) => player.id === id && onThePage(player)));
  }
}

// The page goes: the current player moves out of it and plays on; the others stop for good.
onLeave(() => {
  const home = mediaHome();
  for (const player of [...players]) {
    if (!onThePage(player)) continue;
    if (player === current) player.leave(home);
    else player.destroy();
  }
});

onPage(initPage);

// An embed on its own answers the page framing it (player.js).
if (window.parent !== window && players.length === 1 && players[0].config.embed) {
  players[0].receiver = connect(players[0], { allowed: players[0].config.embed_origins ?? null });
}

window.CiteLivePlayer = {
  players,
  mount,
  playData,
  current: currentPlayer,
  Hls: window.Hls ?? null,
};
