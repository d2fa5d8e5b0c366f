// The quality menu's list: media-chrome's <media-rendition-menu> reads a video's
// `videoRenditions`, the list of qualities the Media Tracks proposal gives media elements, which
// no browser ships yet. Here it is, filled and obeyed by hls.js (listQualities, below).
//
// media-chrome reads the property when a controller adopts its video, before the player has
// run: this module installs it on HTMLVideoElement first (playback.js imports it before
// media-chrome), as the media-tracks polyfill does. Without hls.js (Safari's own HLS) the list
// stays empty and media-chrome hides the menu.

export class RenditionList extends EventTarget {
  #items = [];
  #selected = -1;
  #select = null;

  get length() {
    return this.#items.length;
  }

  [Symbol.iterator]() {
    return this.#items[Symbol.iterator]();
  }

  /** The listener's choice: an index into the list, or -1 for automatic. */
  get selectedIndex() {
    return this.#selected;
  }

  set selectedIndex(value) {
    const index = Number(value);
    const chosen = Number.isInteger(index) && index >= 0 && index < this.length ? index : -1;
    if (chosen === this.#selected) return;
    this.#selected = chosen;
    this.#select?.(chosen);
    this.dispatchEvent(new Event("change"));
  }

  /** Replace the list with `renditions` ({width, height, bitrate, codec}); `select(index)`
   * applies a choice, -1 meaning automatic. The selection starts automatic. */
  reset(renditions, select) {
    for (let index = 0; index < this.#items.length; index += 1) delete this[index];
    const removed = this.#items.length > 0;
    this.#items = renditions.map((rendition, index) => Object.freeze({ id: String(index), ...rendition }));
    this.#items.forEach((rendition, index) => {
      Object.defineProperty(this, index, { value: rendition, configurable: true, enumerable: true });
    });
    this.#selected = -1;
    this.#select = select;
    if (removed) this.dispatchEvent(new Event("removerendition"));
    if (this.#items.length) this.dispatchEvent(new Event("addrendition"));
  }
}

/** The quality menu's choices for `media`: each video level of `hls`'s stream, and automatic
 * (hls.js's own choice by bandwidth and player size). A choice applies at once, as listeners
 * expect of such a menu; automatic takes over from the next segment loaded, dropping nothing. */
export function listQualities(media, hls, levels) {
  const renditions = media.videoRenditions;
  if (!renditions) return;
  const videos = levels.filter((level) => level.height > 0);
  renditions.reset(
    videos.map((level) => ({
      width: level.width,
      height: level.height,
      bitrate: level.bitrate,
      codec: level.videoCodec,
    })),
    (index) => {
      if (index < 0) hls.loadLevel = -1;
      else hls.currentLevel = levels.indexOf(videos[index]);
    },
  );
}

const lists = new WeakMap();

if (typeof HTMLVideoElement !== "undefined" && !("videoRenditions" in HTMLVideoElement.prototype)) {
  Object.defineProperty(HTMLVideoElement.prototype, "videoRenditions", {
    configurable: true,
    get() {
      let list = lists.get(this);
      if (!list) {
        list = new RenditionList();
        lists.set(this, list);
      }
      return list;
    },
  });
}
