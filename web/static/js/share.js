// The "Share / Embed" panel: the page link and the iframe snippet, rebuilt as options change.
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

class SharePanel {
  constructor(panel, player) {
    this.panel = panel;
    this.player = player;
    this.link = panel.querySelector("[data-share-link]");
    this.code = panel.querySelector("[data-share-code]");
    this.startOutput = panel.querySelector("[data-share-start]");
    this.status = panel.querySelector("[data-share-status]");
    this.field = (name) => panel.querySelector(`[name="${name}"]`);
    this.startAt = 0;
    this.color = null;

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
      if (button) this.copy(document.getElementById(button.dataset.copy));
    });
    player?.media.addEventListener("timeupdate", () => {
      if (!this.field("start").checked) this.startOutput.textContent = formatTime(this.now());
    });
    this.update();
  }

  now() {
    return Math.floor(this.player?.media.currentTime || 0);
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
      this.player?.setAccent(color);
    }

    const query = params.toString();
    const embedUrl = this.panel.dataset.embedUrl + (query ? `?${query}` : "");
    if (this.code) {
      this.code.value = embedSnippet(embedUrl, this.panel.dataset.kind, this.panel.dataset.title);
    }
    this.link.value = this.panel.dataset.pageUrl + (start > 0 ? `?t=${start}` : "");
  }

  async copy(field) {
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

/** Wire every share panel of the page to the player of the same production. */
export function initSharePanels(findPlayer) {
  return Array.from(document.querySelectorAll("[data-share-panel]"), (panel) => {
    return new SharePanel(panel, findPlayer(panel.dataset.productionId));
  });
}
