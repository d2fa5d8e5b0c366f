// hls.js and a stream's first bytes, asked for the moment a listener presses play — by the
// player's loader (player.js) while the player's own code (player-core.js) is still on its way,
// and by the player itself (playback.js) otherwise. Small: it comes with every page's script.
//
// Before, each step waited for the one before: the player's code, then hls.js, then the master
// playlist, the media playlist, and only then the first segment; on a slow phone (150 ms round
// trips) that chain was most of the wait for sound. Now hls.js and the stream's first bytes
// come side by side: `warm()` reads the master playlist, chooses the rung playback starts on,
// and fetches its playlist, its init segment and its first segment (and those of the audio
// rendition a video rung plays with) into the browser's HTTP cache, where hls.js then finds
// them (published media is cacheable: a year for segments, a minute for playlists). hls.js
// starts on the same rung (playback.js applies `startVariant` to its levels: their bit rate is
// the BANDWIDTH read here), so nothing is fetched twice.

// hls.js's own estimate of the network before it has measured anything (abrEwmaDefaultEstimate):
// the rung playback starts on is the best one under it, else the lowest. A fast network moves up
// after the first segment, as hls.js measures it.
export const START_ESTIMATE = 500_000;

/** What hls.js's isSupported() checks, without loading it: Media Source Extensions that take
 * fMP4 with H.264 and AAC. */
export function mediaSourceWorks() {
  const Source = window.ManagedMediaSource || window.MediaSource || window.WebKitMediaSource;
  return (
    typeof Source?.isTypeSupported === "function" &&
    Source.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"')
  );
}

const builds = new Map();

/** hls.js, loaded once, as a class; also `window.Hls` once there. An audio production plays
 * with its light build (no alternate renditions, subtitles or DRM, which audio does not use):
 * a third smaller, so sooner there on a slow network. A video needs the full build (its
 * audio is an alternate rendition). */
export function loadHls(kind) {
  const light = kind === "audio";
  if (!builds.has(light)) {
    const loading = (
      light ? import("../vendor/hls.js/hls.light.min.mjs") : import("../vendor/hls.js/hls.min.mjs")
    ).then(
      (module) => {
        const Hls = module.default;
        if (!light || !window.Hls) window.Hls = Hls;
        if (window.CiteLivePlayer && !window.CiteLivePlayer.Hls) window.CiteLivePlayer.Hls = Hls;
        return Hls;
      },
      (error) => {
        builds.delete(light);
        throw error;
      },
    );
    builds.set(light, loading);
  }
  return builds.get(light);
}

// --- the first bytes ------------------------------------------------------------------------

const ATTRIBUTE = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;

function attributes(line) {
  const found = {};
  for (const [, name, value] of line.slice(line.indexOf(":") + 1).matchAll(ATTRIBUTE)) {
    found[name] = value.startsWith('"') ? value.slice(1, -1) : value;
  }
  return found;
}

/** The variants ({url, bandwidth, audio}) and audio renditions ({group, url, default}) of a
 * master playlist's text, their URLs resolved against `base`. */
export function parseMaster(text, base) {
  const variants = [];
  const audio = [];
  const lines = text.split(/\r?\n/).map((line) => line.trim());
  lines.forEach((line, index) => {
    if (line.startsWith("#EXT-X-STREAM-INF:")) {
      const attrs = attributes(line);
      const uri = lines.slice(index + 1).find((next) => next && !next.startsWith("#"));
      if (!uri) return;
      variants.push({
        url: new URL(uri, base).href,
        bandwidth: Math.max(0, Number(attrs.BANDWIDTH) || 0),
        audio: attrs.AUDIO ?? null,
      });
    } else if (line.startsWith("#EXT-X-MEDIA:")) {
      const attrs = attributes(line);
      if (attrs.TYPE !== "AUDIO" || !attrs.URI) return;
      audio.push({ group: attrs["GROUP-ID"], url: new URL(attrs.URI, base).href, default: attrs.DEFAULT === "YES" });
    }
  });
  return { variants, audio };
}

/** The variant playback starts on: the best one whose peak bit rate fits the estimate, else
 * the lowest. */
export function startVariant(variants, estimate = START_ESTIMATE) {
  if (!variants.length) return null;
  const byRate = [...variants].sort((a, b) => a.bandwidth - b.bandwidth);
  const fitting = byRate.filter((variant) => variant.bandwidth <= estimate);
  return fitting.length ? fitting[fitting.length - 1] : byRate[0];
}

/** The init segment and first segment of a media playlist's text. */
function firstBytes(text, base) {
  const urls = [];
  for (const line of text.split(/\r?\n/).map((value) => value.trim())) {
    if (line.startsWith("#EXT-X-MAP:")) {
      const uri = attributes(line).URI;
      if (uri) urls.push(new URL(uri, base).href);
    } else if (line && !line.startsWith("#")) {
      urls.push(new URL(line, base).href);
      break;
    }
  }
  return urls;
}

async function text(url, signal) {
  const response = await fetch(url, { credentials: "same-origin", signal });
  if (!response.ok) throw new Error(`${response.status} for ${url}`);
  return [await response.text(), response.url || url];
}

async function warmPlaylist(url, signal, segments) {
  const [body, base] = await text(url, signal);
  if (!segments) return;
  // The segments' bodies are read to their end, so that the cache keeps them whole.
  await Promise.all(
    firstBytes(body, base).map((segment) =>
      fetch(segment, { credentials: "same-origin", signal }).then((answer) => answer.arrayBuffer()),
    ),
  );
}

const warming = new Map();

/** Fetch what playback of the stream at `url` starts with, once per stream; never rejects.
 * `segments` false (playback starts further on: a link's ?t=): its playlists only. */
export function warm(url, signal, segments = true) {
  if (!url || !mediaSourceWorks()) return Promise.resolve();
  if (!warming.has(url)) {
    const started = (async () => {
      try {
        const [body, base] = await text(url, signal);
        const { variants, audio } = parseMaster(body, base);
        const variant = startVariant(variants);
        if (!variant) return;
        const playlists = [variant.url];
        const group = audio.filter((rendition) => rendition.group === variant.audio);
        const rendition = group.find((candidate) => candidate.default) ?? group[0];
        if (rendition) playlists.push(rendition.url);
        await Promise.all(playlists.map((playlist) => warmPlaylist(playlist, signal, segments)));
      } catch {
        // Only a head start: hls.js asks again for whatever is missing.
        warming.delete(url);
      }
    })();
    warming.set(url, started);
  }
  return warming.get(url);
}
