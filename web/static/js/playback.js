// One player: its media, fed by hls.js (or the browser's own HLS) from the first play on, the
// media-chrome controls, the waveform of audio, seeks and deep links, the renewal of private
// links, and the events it announces on its root. player.js mounts the page's players.
//
import { nameMenus } from "./player_labels.js";
// The video's list of qualities first: media-chrome reads it as it starts (renditions.js).
import { listQualities } from "./renditions.js";
// media-chrome's elements, French labels included: scripts/vendor generates this module, which
// imports every module they need at once (the list of elements is there).
import "../vendor/media-chrome.js";
import { parseTime, formatTime } from "./timecode.js";
import { createWaveform } from "./waveform.js";
import { NOT_PLAYABLE, UNDEFINED_ERROR } from "./playerjs.js";
import { watchPlays } from "./plays.js";
import { level } from "./loudness.js";
import { loadHls, mediaSourceWorks, startVariant, warm } from "./streams.js";

// hls.js (the biggest file of the player) is only fetched at the first play, beside the
// stream's first bytes (streams.js): a page read without playing anything never pays for it.
export { loadHls };

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

// How long the notice that a start time was past the end stays once playback has begun.
const NOTICE_MS = 6000;
// What an arrow key moves the time range by, as media-controller's keyboard offsets say.
const KEY_SEEK_SECONDS = 5;

/** The engine this browser will play HLS with: hls.js whenever Media Source Extensions exist
 * (Chromium now answers "maybe" for HLS in canPlayType, but its native support lacks the ABR
 * and error recovery we rely on), else the browser's own (Safari on older iPhones). */
function engineFor(media) {
  if (mediaSourceWorks()) return "hls.js";
  if (media.canPlayType(HLS_TYPE)) return "native";
  return "none";
}

export class Player {
  /** `onPlay(player)` runs as it starts playing, `onDestroy(player)` once destroyed. */
  constructor(root, { onPlay = () => {}, onDestroy = () => {} } = {}) {
    this.root = root;
    this.hooks = { onPlay, onDestroy };
    this.config = JSON.parse(root.querySelector("script[data-player-config]").textContent);
    this.media = root.querySelector("video, audio");
    this.wave = root.querySelector(".cl-player__wave");
    this.engine = engineFor(this.media);
    // The hls.js class this player plays with (streams.js: a light build for audio).
    this.Hls = null;
    this.hls = null;
    this.wavesurfer = null;
    this.receiver = null;
    this.recoveries = 0;
    this.refreshes = 0;
    this.refreshing = null;
    // Set once the media has its source: the first play, or a seek that needs it.
    this.loading = null;
    this.attached = false;
    // A position asked for before the media had a source (a seek, a setlist link).
    this.requested = null;
    this.destroyed = false;
    this.abort = new AbortController();
    // The waveform is drawn before the media gets its source (waveform.js says why).
    this.drawn = Promise.resolve();
    // The embed's ?color=, validated by the server (#rrggbb). Set here rather than in a style
    // attribute, which the Content-Security-Policy refuses (style-src-attr); the time range and
    // the waveform it colours are drawn after this line.
    if (this.config.color) this.root.style.setProperty("--cl-accent", this.config.color);
    this.root.dataset.engine = this.engine;
  }

  get id() {
    return this.config.id;
  }

  /** Where to start: the embed's validated `t`, else the page's own `?t=`; null (the start)
   * when that is past the end of the recording, which the player then says. */
  startPosition() {
    const given = this.config.start ?? parseTime(new URLSearchParams(window.location.search).get("t"));
    const duration = this.config.duration;
    if (given !== null && duration && given >= duration) {
      this.tellStartIgnored();
      return null;
    }
    return given;
  }

  tellStartIgnored() {
    const notice = this.root.querySelector("[data-start-notice]");
    if (!notice || !notice.hidden) return;
    notice.hidden = false;
    const hide = () => setTimeout(() => (notice.hidden = true), NOTICE_MS);
    this.media.addEventListener("playing", hide, { once: true, signal: this.abort.signal });
  }

  async start() {
    const { signal } = this.abort;
    watchPlays(this.media, this.config);
    // An embed says over its picture that the recording is still processing, until it plays.
    const previewNotice = this.root.querySelector(".cl-preview-notice--overlay");
    if (previewNotice) {
      this.media.addEventListener("playing", () => (previewNotice.hidden = true), { once: true, signal });
    }
    // Listened to at once: a listener may press play while the waveform is being drawn.
    this.media.addEventListener("play", () => this.onPlay(), { signal });
    this.media.addEventListener("pause", () => this.announce("pause"), { signal });
    this.media.addEventListener("ended", () => this.announce("ended"), { signal });
    // A link's start past the end is said at once, not at the first play.
    this.startPosition();
    nameMenus(this.root);
    // The time range moves 5 s an arrow key, as the waveform does (its own step is 1 s).
    this.root
      .querySelector("media-time-range")
      ?.addEventListener("keydown", (event) => this.onRangeKey(event), { signal });
    if (this.wave) {
      this.drawn = this.startWaveform();
      await this.drawn;
    }
    if (this.destroyed) return;
    this.root.dataset.mounted = "";
    if (this.config.autoplay) this.autoplay();
  }

  onPlay() {
    level(this.media, this.config.loudness_lufs);
    this.hooks.onPlay(this);
    this.load();
    this.announce("play");
  }

  /** Tell the page: `cl-player:NAME`, bubbling, with this player in its detail. */
  announce(name, detail = {}) {
    const event = new CustomEvent(`cl-player:${name}`, {
      bubbles: true,
      detail: { id: this.id, player: this, ...detail },
    });
    this.root.dispatchEvent(event);
  }

  play() {
    this.media.play().catch((error) => {
      // Refused by the browser (no interaction with the page yet): the play button is there.
      if (error.name === "NotAllowedError") {
        this.announce("error", { error: { code: UNDEFINED_ERROR, msg: "Playback refused by the browser" } });
      }
    });
  }

  pause() {
    this.media.pause();
  }

  /** Give the media its source, once, after the waveform is drawn; hls.js and the stream's
   * first bytes are on their way meanwhile. */
  load() {
    if (!this.loading) {
      if (this.engine === "hls.js") {
        loadHls(this.config.kind).catch(() => {});
        warm(this.config.hls_url, this.abort.signal, !this.firstPosition());
      }
      this.loading = this.drawn.then(() => {
        if (!this.destroyed) this.attach();
      });
    }
    return this.loading;
  }

  async startWaveform() {
    const style = getComputedStyle(this.root);
    const { signal } = this.abort;
    try {
      this.wavesurfer = await createWaveform(this.wave, this.media, {
        url: this.wave.dataset.waveformUrl,
        duration: this.config.duration,
        colors: {
          wave: style.getPropertyValue("--cl-player-muted").trim() || "#8d8b94",
          progress: style.getPropertyValue("--cl-accent").trim() || "#d6452f",
        },
      });
      if (this.destroyed) {
        this.wavesurfer.destroy();
        return;
      }
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
    this.media.addEventListener("timeupdate", update, { signal });
    this.media.addEventListener("durationchange", update, { signal });
    this.wave.addEventListener(
      "keydown",
      (event) => {
        // Arrows, space and k are media-chrome's hotkeys (the waveform sits inside its
        // controller); Home and End complete the slider.
        if (event.key === "Home") this.seek(0);
        else if (event.key === "End") this.seek(this.duration() - 1);
        else return;
        event.preventDefault();
      },
      { signal },
    );
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
    if (this.attaching) return;
    this.attaching = true;
    this.attached = this.engine !== "hls.js";
    if (this.engine === "hls.js") {
      loadHls(this.config.kind).then(
        (Hls) => {
          if (this.destroyed) return;
          this.Hls = Hls;
          // Where to start, as chosen by now (a seek made while hls.js was on its way counts).
          this.createHls(this.config.hls_url, this.firstPosition());
          this.attached = true;
          this.root.dataset.attached = "";
          if (!this.media.paused) this.media.play().catch(() => {});
        },
        (error) => {
          console.error(error);
          this.fail();
        },
      );
      return;
    }
    const url = this.config.hls_url;
    const start = this.firstPosition() ?? (this.config.preview ? 0 : null);
    if (this.engine === "native") {
      this.media.preload = "auto";
      this.media.src = url;
      // The browser's own player also starts a growing playlist near its end: a preview
      // starts from the beginning (above).
      if (start !== null) this.whenLoaded(() => (this.media.currentTime = start));
      // Safari's own player says nothing of HTTP statuses: any error may be an expired link.
      this.media.addEventListener(
        "error",
        () => this.refreshLinks().then((renewed) => renewed || this.fail()),
        { signal: this.abort.signal },
      );
    } else {
      this.fail(NOT_PLAYABLE);
    }
    this.root.dataset.attached = "";
    // Pressed before there was anything to play: the element waits for its source, and is
    // asked again now that it has one.
    if (!this.media.paused) this.media.play().catch(() => {});
  }

  /** A position chosen before the media had a source — a seek, or a click on the waveform,
   * which sets the element's default start position — else the link's. */
  firstPosition() {
    if (this.requested !== null) return this.requested;
    const chosen = this.media.currentTime;
    return chosen > 0 ? chosen : this.startPosition();
  }

  createHls(url, start) {
    const Hls = this.Hls;
    const hls = new Hls({
      // A preview's playlists are EVENT playlists without their end yet, which hls.js plays as
      // live, from near their newest segment; a preview is heard from its start, as it will
      // be once finished. It keeps playing as they grow (hls.js reloads them every segment's
      // duration), and ends where the last one ends, once the pipeline writes ENDLIST.
      startPosition: start ?? (this.config.preview ? 0 : -1),
      capLevelToPlayerSize: this.config.kind === "video",
      // A minute ahead at most: hls.js otherwise fills 60 MB, which is a whole 5-minute
      // session or concert rung, fetched within seconds for a listener who may stop after ten
      // (bench/embeds.py). Behind, 90 s are kept for seeking back; older media is let go, so
      // that a two-hour concert does not fill a phone's memory.
      maxBufferLength: 30,
      maxMaxBufferLength: 60,
      backBufferLength: 90,
      // Loading starts once the rung to start on is chosen (below).
      autoStartLoad: false,
    });
    hls.on(Hls.Events.ERROR, (_event, data) => this.onHlsError(data));
    hls.on(Hls.Events.MANIFEST_PARSED, (_event, data) => {
      if (this.config.kind === "video") listQualities(this.media, hls, data.levels);
      // The rung whose first bytes streams.js warmed, by the same rule (a level's bit rate is
      // its BANDWIDTH): the best one under hls.js's first estimate, else the lowest.
      const levels = data.levels.map((level, index) => ({ index, bandwidth: level.bitrate }));
      const first = startVariant(levels);
      if (first) hls.startLevel = first.index;
      hls.startLoad(hls.config.startPosition);
    });
    hls.on(Hls.Events.FRAG_BUFFERED, () => {
      this.recoveries = 0;
      this.refreshes = 0;
    });
    hls.loadSource(url);
    hls.attachMedia(this.media);
    this.hls = hls;
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
    const Hls = this.Hls;
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

  fail(code = UNDEFINED_ERROR) {
    if (this.root.querySelector(".cl-player__error")) return;
    const message = document.createElement("p");
    message.className = "cl-player__error";
    message.setAttribute("role", "alert");
    message.textContent = this.root.dataset.errorText || "This recording cannot be played.";
    this.root.append(message);
    this.announce("error", { error: { code, msg: message.textContent } });
  }

  whenLoaded(callback) {
    if (this.media.readyState >= HTMLMediaElement.HAVE_METADATA) callback();
    else this.media.addEventListener("loadedmetadata", callback, { once: true, signal: this.abort.signal });
  }

  autoplay() {
    // Browsers let a page start sound only after the listener has interacted with it; muted
    // video may always start, so video starts muted and the listener unmutes.
    if (this.config.kind === "video") this.media.muted = true;
    this.media.play().catch(() => {
      // Refused: the play button is there.
    });
  }

  /** Go to `seconds` (kept within the recording). Before the media has a source, the
   * position is kept for when it gets one; `load` gives it one at once (the partner page's
   * seek, which expects the position to be reached), `play` plays from there. */
  onRangeKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const step = { ArrowRight: KEY_SEEK_SECONDS, ArrowLeft: -KEY_SEEK_SECONDS }[event.key];
    if (step === undefined) return;
    event.preventDefault();
    event.stopPropagation();
    this.seek((this.media.currentTime || 0) + step);
  }

  seek(seconds, { play = false, load = false } = {}) {
    const end = Math.max(0, this.duration() - 0.1);
    const target = Math.min(Math.max(0, seconds), end || Math.max(0, seconds));
    if (!this.attached) {
      this.requested = target;
      // The element's default start position: what its currentTime says until it plays.
      this.media.currentTime = target;
      if (load) this.load();
    } else {
      this.whenLoaded(() => (this.media.currentTime = target));
    }
    if (play) this.play();
  }

  setAccent(color) {
    if (color) this.root.style.setProperty("--cl-accent", color);
    else this.root.style.removeProperty("--cl-accent");
    if (this.wavesurfer) {
      const accent = getComputedStyle(this.root).getPropertyValue("--cl-accent").trim();
      this.wavesurfer.setOptions({ progressColor: accent, cursorColor: accent });
    }
  }

  /** The page holding this player goes (a page swap): the media element moves to `home`,
   * outside the page, in one step (a media element moved within one task keeps playing), and
   * the waveform drawn on the page is let go. The player goes on, heard from the bar. */
  leave(home) {
    this.wavesurfer?.destroy();
    this.wavesurfer = null;
    home.append(this.media);
  }

  /** Back on a page showing this production: its player (`root`, a fresh [data-player]) gets
   * this one's media element in place of its own, so that it shows what plays, where it is. */
  rehome(root) {
    const fresh = root.querySelector("video, audio");
    if (fresh && fresh !== this.media) {
      // Tracks (storyboard, setlist) come with the page's element when this one has none.
      if (!this.media.querySelector("track")) {
        for (const track of fresh.querySelectorAll("track")) this.media.append(track);
      }
      this.media.slot = fresh.slot;
      fresh.replaceWith(this.media);
    }
    this.root = root;
    this.wave = root.querySelector(".cl-player__wave");
    if (this.config.color) root.style.setProperty("--cl-accent", this.config.color);
    root.dataset.engine = this.engine;
    if (this.attached) root.dataset.attached = "";
    root.querySelector("media-time-range")?.addEventListener("keydown", (event) => this.onRangeKey(event), {
      signal: this.abort.signal,
    });
    if (this.wave) {
      this.drawn = this.startWaveform();
      this.drawn.then(() => {
        if (!this.destroyed && this.root === root) root.dataset.mounted = "";
      });
    } else {
      root.dataset.mounted = "";
    }
  }

  /** Stop for good: hls.js and its downloads, the waveform, the partner page's link, every
   * listener; the element is left without a source. */
  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    this.abort.abort();
    this.receiver?.stop();
    this.media.pause();
    this.hls?.destroy();
    this.hls = null;
    this.wavesurfer?.destroy();
    this.wavesurfer = null;
    if (this.media.hasAttribute("src")) {
      this.media.removeAttribute("src");
      this.media.load();
    }
    delete this.root.dataset.mounted;
    this.hooks.onDestroy(this);
  }
}
