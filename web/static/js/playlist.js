// A collection's playlist player: one player on the stage at a time, taken from the <template>
// of its item in the list; previous and next; and when one ends, the next one starts.
//
// Without scripts the list is a list of links to the productions' pages. The players wait in
// <template> elements, which player-core.js leaves alone: only the one on the stage is mounted,
// so a collection of fifty productions loads one stream, not fifty. player-core.js starts the
// playlists of each page (initPlaylists), as the player's loader (player.js) brings it at once
// on a page that has one.
import { once } from "./pages.js";

class Playlist {
  constructor(root, mount) {
    this.root = root;
    this.mount = mount;
    this.stage = root.querySelector("[data-playlist-stage]");
    this.items = Array.from(root.querySelectorAll("[data-playlist-item]"));
    this.now = root.querySelector("[data-playlist-now]");
    this.previousButton = root.querySelector("[data-playlist-previous]");
    this.nextButton = root.querySelector("[data-playlist-next]");
    this.index = -1;
    this.player = null;

    root.querySelector("[data-playlist-controls]").hidden = false;
    this.previousButton.addEventListener("click", () => this.go(this.index - 1, true));
    this.nextButton.addEventListener("click", () => this.go(this.index + 1, true));
    root.addEventListener("click", (event) => {
      const link = event.target.closest?.("[data-playlist-choose]");
      if (!link || event.button !== 0) return;
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      this.go(Number(link.dataset.playlistChoose), true);
    });
    // Continuous play: the player announces its end (player.js), the next one starts.
    root.addEventListener("cl-player:ended", () => {
      // Its page gone (a swap), what plays is the bar's: it goes on from there.
      if (!root.isConnected) return;
      if (this.index + 1 < this.items.length) this.go(this.index + 1, true);
    });
    this.go(0, false);
    root.dataset.playlist = "ready";
  }

  go(index, play) {
    if (index < 0 || index >= this.items.length) return;
    const template = this.items[index].querySelector("template[data-playlist-player]");
    this.player?.destroy();
    this.player = null;
    this.stage.replaceChildren(template.content.cloneNode(true));
    this.index = index;
    this.items.forEach((item, i) => {
      if (i === index) item.setAttribute("aria-current", "true");
      else item.removeAttribute("aria-current");
    });
    const title = this.items[index].querySelector(".cl-playlist__title")?.textContent ?? "";
    this.now.textContent = `${index + 1} / ${this.items.length} · ${title}`;
    this.previousButton.disabled = index === 0;
    this.nextButton.disabled = index === this.items.length - 1;
    this.root.dataset.current = String(index);
    this.reveal(this.items[index]);
    const root = this.stage.querySelector("[data-player]");
    if (!root) return;
    const player = this.mount(root);
    this.player = player;
    if (!play) return;
    // Once its stream is attached; a click started it (or the previous one, which lets the
    // browser start the next one with sound).
    Promise.resolve(player.started).then(() => {
      if (this.player === player) player.media.play().catch(() => {});
    });
  }

  /** Scroll the list (in the embed, a box of its own) so that ``item`` is in sight; never the
   * page around it, which in a frame is the partner's. */
  reveal(item) {
    const list = item.parentElement;
    if (list.scrollHeight <= list.clientHeight) return;
    const box = list.getBoundingClientRect();
    const row = item.getBoundingClientRect();
    if (row.top < box.top) list.scrollTop -= box.top - row.top;
    else if (row.bottom > box.bottom) list.scrollTop += row.bottom - box.bottom;
  }
}

const started = new WeakSet();

/** Start the playlists of the page there is now, their players mounted by `mount`
 * (player-core.js); player-core.js stops the players of a page that goes. */
export function initPlaylists(mount) {
  once(document.querySelectorAll("[data-playlist]"), started, (root) => new Playlist(root, mount));
}
