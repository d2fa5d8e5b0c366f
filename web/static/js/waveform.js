// The audio player's waveform: wavesurfer.js draws the peaks computed at ingest and follows the
// same <audio> element that hls.js feeds, so it never downloads or decodes the audio itself.
import WaveSurfer from "../vendor/wavesurfer.js/wavesurfer.esm.js";

const READY_TIMEOUT_MS = 5000;

/**
 * Peaks in audiowaveform's JSON (version 2: `data` holds min and max per pixel, interleaved by
 * channel, as 8- or 16-bit integers) as wavesurfer wants them: one channel of floats in [-1, 1],
 * min and max still interleaved, which its bar renderer reads as the envelope.
 */
export function peaksFromAudiowaveform(json) {
  if (!json || !Array.isArray(json.data)) throw new Error("waveform: no data");
  const channels = Math.max(1, Math.floor(Number(json.channels) || 1));
  const scale = json.bits === 16 ? 32768 : 128;
  const stride = 2 * channels;
  const pixels = Math.floor(json.data.length / stride);
  if (pixels < 1) throw new Error("waveform: empty");
  const peaks = new Float32Array(pixels * 2);
  for (let i = 0; i < pixels; i++) {
    // Several channels are drawn as one: the widest envelope of them at each pixel.
    let low = 0;
    let high = 0;
    for (let c = 0; c < channels; c++) {
      low = Math.min(low, Number(json.data[i * stride + 2 * c]) || 0);
      high = Math.max(high, Number(json.data[i * stride + 2 * c + 1]) || 0);
    }
    peaks[2 * i] = Math.max(-1, low / scale);
    peaks[2 * i + 1] = Math.min(1, high / scale);
  }
  return peaks;
}

/** The duration the peaks cover, for when the production's own duration is unknown. */
export function peaksDuration(json) {
  const rate = Number(json.sample_rate);
  const perPixel = Number(json.samples_per_pixel);
  const length = Number(json.length);
  return rate > 0 && perPixel > 0 && length > 0 ? (length * perPixel) / rate : 0;
}

/**
 * Draw the waveform of `url` in `container`, bound to `media`. Resolves with the WaveSurfer
 * instance once it has drawn, before anything gives `media` a source: wavesurfer resets the
 * source of a media element it loads into, which would cut hls.js off.
 */
export async function createWaveform(container, media, { url, duration, colors }) {
  const signal = AbortSignal.timeout ? AbortSignal.timeout(READY_TIMEOUT_MS) : undefined;
  const response = await fetch(url, { credentials: "omit", signal });
  if (!response.ok) throw new Error(`waveform: HTTP ${response.status}`);
  const json = await response.json();
  const peaks = peaksFromAudiowaveform(json);
  const wavesurfer = WaveSurfer.create({
    container,
    media,
    peaks: [peaks],
    duration: duration || peaksDuration(json),
    height: "auto",
    waveColor: colors.wave,
    progressColor: colors.progress,
    cursorColor: colors.progress,
    cursorWidth: 2,
    barWidth: 2,
    barGap: 1,
    barRadius: 2,
    normalize: true,
    dragToSeek: true,
  });
  try {
    await new Promise((resolve, reject) => {
      wavesurfer.once("ready", resolve);
      wavesurfer.once("error", reject);
      // The player waits for the waveform before loading the media: never wait forever.
      setTimeout(() => reject(new Error("waveform: not drawn in time")), READY_TIMEOUT_MS);
    });
  } catch (error) {
    wavesurfer.destroy();
    throw error;
  }
  return wavesurfer;
}
