// The catalogue's player: hls.js feeding a <video> or <audio> dressed by media-chrome, the
// waveform of audio productions, deep links (?t= and [data-seek]) and the share panel.
//
// The video's list of qualities first: media-chrome reads it as it starts (renditions.js).
import "./renditions.js";
// media-chrome's elements, French labels included: scripts/vendor generates this module, which
// imports every module they need at once (the list of elements is there).
import "../vendor/media-chrome.js";
import Hls from "../vendor/hls.js/hls.min.mjs";
import { parseTime, formatTime } from "./timecode.js";
import { createWaveform } from "./waveform.js";
import { initSharePanels } from "./share.js";
import { watchPlays } from "./plays.js";

const HLS_TYPE = "application/vnd.apple.mpegurl";
// A network hiccup is retried a few times before the listener is told.
const MAX_RECOVERIES = 3;
// A private production plays from signed links that expire (media.signed_url_seconds), and a
// long concert outlives them. The server answers an expired link as it answers a missing file;
// the player then asks the API for fresh links (same origin, with the session cookie) and goes
// on from where it was. At most this many times in a row without a segment playing in between,
// so that a file that is really gone ends in the error message rather than a loop.
const EXPIRED_LINK = new Set([403, 404, 410]);
const MAX_REFRESHES = 2;

class Player {
  constructor(root) {
    this.root = root;
    this.config = JSON.parse(root.querySelector("script[data-player-config]").textContent);
    this.media = root.querySelector("video, audio");
    this.wave = root.querySelector(".cl-player__wave");
    this.engine = null;
    this.hls = null;
    this.wavesurfer = null;
    this.recoveries = 0;
    this.refreshes = 0;
    this.refreshing = null;
    // The embed's ?color=, validated by the server (#rrggbb). Set here rather than in a style
    // attribute, which the Content-Security-Policy refuses (style-src-attr); the time range and
    // the waveform it colours are drawn after this line.
    if (this.config.color) this.root.style.setProperty("--cl-accent", this.config.color);
  }

  get id() {
    return this.config.id;
  }

  /** Where to start: the embed's validated `t`, else the page's own `?t=`. */
  startPosition() {
    if (this.config.start !== null && this.config.start !== undefined) return this.config.start;
    return parseTime(new URLSearchParams(window.location.search).get("t"));
  }

  async start() {
    watchPlays(this.media, this.config);
    if (this.wave) await this.startWaveform();
    this.attach();
    if (this.config.autoplay) this.autoplay();
  }

  async startWaveform() {
    const style = getComputedStyle(this.root);
    try {
      this.wavesurfer = await createWaveform(this.wave, this.media, {
        url: this.wave.dataset.waveformUrl,
        duration: this.config.duration,
        colors: {
          wave: style.getPropertyValue("--cl-player-muted").trim() || "#8d8b94",
          progress: style.getPropertyValue("--cl-accent").trim() || "#d6452f",
        },
      });
      this.root.dataset.waveform = "ready";
    } catch (error) {
      // No peaks (an old version, a failed fetch): the plain time range takes over.
      console.warn(error);
      this.root.dataset.waveform = "failed";
      this.wave.hidden = true;
      this.root.querySelector(".cl-player__range")?.removeAttribute("hidden");
      return;
    }
    const update = () => this.describePosition();
    this.media.addEventListener("timeupdate", update);
    this.media.addEventListener("durationchange", update);
    this.wave.addEventListener("keydown", (event) => {
      // Arrows, space and k are media-chrome's hotkeys (the waveform sits inside its
      // controller); Home and End complete the slider.
      if (event.key === "Home") this.seek(0);
      else if (event.key === "End") this.seek(this.duration() - 1);
      else return;
      event.preventDefault();
    });
  }

  duration() {
    const known = this.media.duration;
    return Number.isFinite(known) && known > 0 ? known : this.config.duration || 0;
  }

  describePosition() {
    const now = this.media.currentTime || 0;
    const total = this.duration();
    this.wave.setAttribute("aria-valuenow", String(Math.round(now)));
    this.wave.setAttribute("aria-valuemax", String(Math.round(total)));
    this.wave.setAttribute("aria-valuetext", `${formatTime(now)} / ${formatTime(total)}`);
  }

  attach() {
    const url = this.config.hls_url;
    const start = this.startPosition();
    // hls.js whenever Media Source Extensions exist: Chromium now answers "maybe" for HLS in
    // canPlayType, but its native support lacks the ABR and error recovery we rely on.
    if (Hls.isSupported()) {
      this.createHls(url, start);
      this.engine = "hls.js";
    } else if (this.media.canPlayType(HLS_TYPE)) {
      this.media.src = url;
      this.engine = "native";
      if (start) this.whenLoaded(() => (this.media.currentTime = start));
      // Safari's own player says nothing of HTTP statuses: any error may be an expired link.
      this.media.addEventListener("error", () => {
        this.refreshLinks().then((renewed) => renewed || this.fail());
      });
    } else {
      this.engine = "none";
      this.fail();
    }
    this.root.dataset.engine = this.engine;
  }

  createHls(url, start) {
    const hls = new Hls({
      startPosition: start ?? -1,
      capLevelToPlayerSize: this.config.kind === "video",
      maxBufferLength: 30,
    });
    hls.on(Hls.Events.ERROR, (_event, data) => this.onHlsError(data));
    hls.on(Hls.Events.MANIFEST_PARSED, (_event, data) => this.listQualities(hls, data.levels));
    hls.on(Hls.Events.FRAG_BUFFERED, () => {
      this.recoveries = 0;
      this.refreshes = 0;
    });
    hls.loadSource(url);
    hls.attachMedia(this.media);
    this.hls = hls;
  }

  /** The quality menu's choices: each video level of the stream, and automatic (hls.js's
   * own choice by bandwidth and player size). A choice applies at once, as listeners expect of
   * such a menu; automatic takes over from the next segment loaded, dropping nothing. */
  listQualities(hls, levels) {
    const renditions = this.media.videoRenditions;
    if (!renditions || this.config.kind !== "video") return;
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

  /** Fresh media links from the API, and the source reloaded where playback was; false when
   * there are none (signed out meanwhile, production gone) or too many attempts in a row. */
  refreshLinks() {
    if (this.refreshing) return this.refreshing;
    if (this.refreshes >= MAX_REFRESHES) return Promise.resolve(false);
    this.refreshes += 1;
    this.refreshing = this.fetchLinks()
      .then((url) => {
        if (!url) return false;
        this.reload(url);
        return true;
      })
      .catch(() => false)
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  async fetchLinks() {
    const response = await fetch(this.config.api_url, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) return null;
    const data = await response.json();
    return typeof data.hls_url === "string" ? data.hls_url : null;
  }

  reload(url) {
    const position = this.media.currentTime || 0;
    const playing = !this.media.paused;
    this.config.hls_url = url;
    this.root.dataset.linksRenewed = String(Number(this.root.dataset.linksRenewed || 0) + 1);
    if (this.engine === "hls.js") {
      this.hls?.destroy();
      this.createHls(url, position);
    } else {
      this.media.src = url;
      this.whenLoaded(() => (this.media.currentTime = position));
    }
    if (playing) this.media.play().catch(() => {});
  }

  onHlsError(data) {
    const status = data.response?.code;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR && EXPIRED_LINK.has(status)) {
      // Refused rather than lost: retrying the same link cannot help, fresh links may.
      this.refreshLinks().then((renewed) => {
        if (!renewed && data.fatal) this.giveUp();
      });
      return;
    }
    if (!data.fatal) return;
    if (this.recoveries++ < MAX_RECOVERIES) {
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) return this.hls.startLoad();
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) return this.hls.recoverMediaError();
    }
    this.giveUp();
  }

  giveUp() {
    this.hls?.destroy();
    this.hls = null;
    this.fail();
  }

  fail() {
    if (this.root.querySelector(".cl-player__error")) return;
    const message = document.createElement("p");
    message.className = "cl-player__error";
    message.setAttribute("role", "alert");
    message.textContent = this.root.dataset.errorText || "This recording cannot be played.";
    this.root.append(message);
  }

  whenLoaded(callback) {
    if (this.media.readyState >= HTMLMediaElement.HAVE_METADATA) callback();
    else this.media.addEventListener("loadedmetadata", callback, { once: true });
  }

  autoplay() {
    // Browsers let a page start sound only after the listener has interacted with it; muted
    // video may always start, so video starts muted and the listener unmutes.
    if (this.config.kind === "video") this.media.muted = true;
    this.media.play().catch(() => {
      // Refused: the play button is there.
    });
  }

  seek(seconds, { play = false } = {}) {
    const target = Math.max(0, seconds);
    this.whenLoaded(() => {
      this.media.currentTime = Math.min(target, Math.max(0, this.duration() - 0.1) || target);
    });
    if (play) this.media.play().catch(() => {});
  }

  setAccent(color) {
    if (color) this.root.style.setProperty("--cl-accent", color);
    else this.root.style.removeProperty("--cl-accent");
    if (this.wavesurfer) {
      const accent = getComputedStyle(this.root).getPropertyValue("--cl-accent").trim();
      this.wavesurfer.setOptions({ progressColor: accent, cursorColor: accent });
    }
  }
}

const players = Array.from(document.querySelectorAll("[data-player]"), (root) => new Player(root));

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

initSharePanels((id) => players.find((player) => player.id === id));

window.CiteLivePlayer = { players, Hls };
window.Hls = Hls;

for (const player of players) {
  player.start().catch((error) => {
    console.error(error);
    player.fail();
  });
}
