// Time codes as links and embeds write them: "90", "90.5", "1m30s", "1h2m", "1:30", "1:02:03".
// The same grammar as parse_time in cite_live/player.py, which validates them on the server.

// Longer than any capture the limits let in; a bigger start time is a typo or a probe.
export const MAX_START = 7 * 24 * 3600;

const SECONDS = /^\d{1,6}(?:\.\d+)?$/;
const CLOCK = /^(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/;
const UNITS = /^(?:(\d{1,3})h)?(?:(\d{1,4})m)?(?:(\d{1,6}(?:\.\d+)?)s)?$/;

/** Seconds, or null when `value` is not a time code. */
export function parseTime(value) {
  if (value === null || value === undefined) return null;
  const text = String(value).trim().toLowerCase();
  if (!text || text.length > 20) return null;
  let seconds;
  let match;
  if (SECONDS.test(text)) {
    seconds = Number(text);
  } else if ((match = CLOCK.exec(text))) {
    // A clock reads 1:05, never 1:99 (nor 1:75:00 once hours are written).
    if (Number(match[3]) >= 60 || (match[1] !== undefined && Number(match[2]) >= 60)) return null;
    seconds = Number(match[1] || 0) * 3600 + Number(match[2]) * 60 + Number(match[3]);
  } else if ((match = UNITS.exec(text)) && (match[1] || match[2] || match[3])) {
    seconds = Number(match[1] || 0) * 3600 + Number(match[2] || 0) * 60 + Number(match[3] || 0);
  } else {
    return null;
  }
  if (!Number.isFinite(seconds) || seconds > MAX_START) return null;
  return seconds;
}

/** "1:05" or "1:02:03". */
export function formatTime(seconds) {
  const total = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}
