// Plays, counted once per playback session when it was really heard: 30 s, or half of a
// shorter recording, of time actually played (a seek skips nothing into the count). Then one
// beacon goes to the site (POST config.plays_url) with the production, a playback id drawn
// here (random, kept nowhere: no cookie, no storage) and where the player is: this site's
// page, or an embed and the origin of the page embedding it.

const THRESHOLD_SECONDS = 30;
// A timeupdate comes every 250 ms or so while playing; a longer step is a jump, not listening.
const MAX_STEP_SECONDS = 1.5;

function playbackId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The origin of the page embedding this one: Chromium and Safari say it; elsewhere the
 * referrer does (its path left out), when the embedding page sends one. */
function embeddingOrigin() {
  const ancestors = window.location.ancestorOrigins;
  if (ancestors && ancestors.length > 0) return ancestors[0];
  try {
    return document.referrer ? new URL(document.referrer).origin : null;
  } catch {
    return null;
  }
}

function send(url, body) {
  const text = JSON.stringify(body);
  if (navigator.sendBeacon && navigator.sendBeacon(url, text)) return;
  fetch(url, { method: "POST", body: text, keepalive: true, credentials: "same-origin" }).catch(
    () => {},
  );
}

/**
 * Count the time `media` is actually heard and send one beacon per playback session once the
 * threshold is passed. `config` is the player's: `plays_url`, `id` (the production's address),
 * `embed`, `duration`. A session ends when the recording does: playing it again is a new play.
 */
export function watchPlays(media, config) {
  if (!config.plays_url) return null;
  const state = { id: playbackId(), heard: 0, last: null, sent: false };

  const threshold = () => {
    const known = Number.isFinite(media.duration) && media.duration > 0;
    const duration = known ? media.duration : config.duration || 0;
    return duration > 0 ? Math.min(THRESHOLD_SECONDS, duration / 2) : THRESHOLD_SECONDS;
  };

  const report = () => {
    state.sent = true;
    const embed = Boolean(config.embed);
    send(config.plays_url, {
      production: config.id,
      playback: state.id,
      source: embed ? "embed" : "site",
      origin: embed ? embeddingOrigin() : null,
    });
    media.dispatchEvent(new CustomEvent("cl-play-counted", { detail: { playback: state.id } }));
  };

  media.addEventListener("timeupdate", () => {
    const now = media.currentTime;
    if (state.last !== null && !media.paused && !media.seeking) {
      const step = now - state.last;
      if (step > 0 && step <= MAX_STEP_SECONDS * Math.max(1, media.playbackRate)) {
        state.heard += step;
      }
    }
    state.last = now;
    if (!state.sent && state.heard >= threshold()) report();
  });
  // After a seek, counting starts again from where the listener landed.
  media.addEventListener("seeking", () => {
    state.last = null;
  });
  media.addEventListener("ended", () => {
    Object.assign(state, { id: playbackId(), heard: 0, last: null, sent: false });
  });
  return state;
}
