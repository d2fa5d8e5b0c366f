// The "Share / Embed" panel: the page link and the iframe snippet, rebuilt as options change.
// The panel is a <details> that opens without script; this module only keeps its link and
// snippet up to date. Pages may be swapped in without a reload: init(root) wires the panels of
// what was swapped in and skips those it already knows, however often it is called.
import { formatTime } from "./timecode.js";

/** The same attribute escaping as Python's html.escape, so both write the same snippet. */
function escapeAttribute(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#x27;");
}

/**
 * The iframe HTML, written as cite_live.player.embed_snippet writes it: it fits any column
 * from 280 px up (video keeps 16:9, audio its height), the width and height attributes kept.
 */
export function embedSnippet(embedUrl, kind, title) {
  const height = kind === "audio" ? 166 : 360;
  const shape = kind === "audio" ? `height:${height}px` : "height:auto;aspect-ratio:16/9";
  return (
    `<iframe src="${escapeAttribute(embedUrl)}" width="640" height="${height}" ` +
    `style="border:0;width:100%;max-width:100%;${shape}" ` +
    'allow="autoplay; fullscreen; picture-in-picture" allowfullscreen loading="lazy" ' +
    'referrerpolicy="strict-origin-when-cross-origin" ' +
    `title="${escapeAttribute(Array.from(title).slice(0, 200).join(""))}"></iframe>`
  );
}

const panels = new WeakMap();

/** The page's player of a production, when player.js has mounted one. */
function playerOnPage(id) {
  return window.CiteLivePlayer?.players?.find((player) => player.id === id) ?? null;
}

class SharePanel {
  constructor(panel, findPlayer) {
    this.panel = panel;
    // Looked up when needed rather than kept: the player may be mounted after the panel, or
    // be replaced by a page swap while the panel stays.
    this.findPlayer = () => findPlayer(panel.dataset.productionId) ?? null;
    this.link = panel.querySelector("[data-share-link]");
    this.code = panel.querySelector("[data-share-code]");
    this.startOutput = panel.querySelector("[data-share-start]");
    this.status = panel.querySelector("[data-share-status]");
    this.field = (name) => panel.querySelector(`[name="${name}"]`);
    this.startAt = 0;
    this.color = null;
    this.watched = null;
    this.onTime = () => {
      if (!this.field("start").checked) this.startOutput.textContent = formatTime(this.now());
    };

    panel.addEventListener("change", (event) => {
      if (event.target === this.field("start") && event.target.checked) this.startAt = this.now();
      if (event.target === this.field("color")) this.field("use_color").checked = true;
      this.update();
    });
    panel.addEventListener("input", (event) => {
      if (event.target === this.field("color")) {
        this.field("use_color").checked = true;
        this.update();
      }
    });
    panel.addEventListener("click", (event) => {
      const button = event.target.closest("[data-copy]");
      if (button) this.copy(panel.querySelector(`#${CSS.escape(button.dataset.copy)}`));
    });
    // Opened, it shows where the player is now.
    panel.addEventListener("toggle", () => {
      if (panel.open) this.update();
    });
    this.update();
  }

  /** The player to follow, listened to once however often it is looked up. */
  player() {
    const player = this.findPlayer();
    if (player !== this.watched) {
      this.watched?.media.removeEventListener("timeupdate", this.onTime);
      player?.media.addEventListener("timeupdate", this.onTime);
      this.watched = player;
    }
    return player;
  }

  now() {
    return Math.floor(this.player()?.media.currentTime || 0);
  }

  update() {
    const params = new URLSearchParams();
    const start = this.field("start").checked ? this.startAt : 0;
    this.startOutput.textContent = formatTime(start || this.now());
    if (start > 0) params.set("t", String(start));
    // A production that plays on this site only has neither embed code nor its options.
    if (this.field("autoplay")?.checked) params.set("autoplay", "1");
    if (this.field("loop")?.checked) params.set("loop", "1");
    const color = this.field("use_color")?.checked ? this.field("color").value : null;
    if (color) params.set("color", color.replace("#", ""));
    if (color !== this.color) {
      // The page's player previews the colour the partner will get.
      this.color = color;
      this.player()?.setAccent(color);
    }

    const query = params.toString();
    const embedUrl = this.panel.dataset.embedUrl + (query ? `?${query}` : "");
    if (this.code) {
      this.code.value = embedSnippet(embedUrl, this.panel.dataset.kind, this.panel.dataset.title);
    }
    this.link.value = this.panel.dataset.pageUrl + (start > 0 ? `?t=${start}` : "");
  }

  async copy(field) {
    if (!field) return;
    let copied = false;
    try {
      await navigator.clipboard.writeText(field.value);
      copied = true;
    } catch {
      // The clipboard API needs a secure context and permission; selecting the text and the
      // old copy command still work in most browsers, and the text stays selected otherwise.
      field.focus();
      field.select();
      try {
        copied = document.execCommand("copy");
      } catch {
        copied = false;
      }
    }
    this.status.textContent = copied ? this.status.dataset.copied : this.status.dataset.copyFailed;
  }
}

/**
 * Wire the share panels inside `root` (the document, or what a page swap brought in) to the
 * player of the same production; `findPlayer(id)` finds it, the page's players by default.
 * A panel already wired is left as it is, so calling this again is harmless. Returns the
 * panels' controllers, new and old.
 */
export function init(root = document, findPlayer = playerOnPage) {
  const found = [];
  if (root.matches?.("[data-share-panel]")) found.push(root);
  found.push(...root.querySelectorAll("[data-share-panel]"));
  return found.map((panel) => {
    let known = panels.get(panel);
    if (!known) {
      known = new SharePanel(panel, findPlayer);
      panels.set(panel, known);
    }
    return known;
  });
}

/** Wire every share panel of the page to the player of the same production. */
export function initSharePanels(findPlayer) {
  return init(document, findPlayer);
}
