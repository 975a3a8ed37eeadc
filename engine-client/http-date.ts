/**
 * HTTP-date (RFC 9110 5.6.7), as a `Retry-After` may carry it. Recipients must read all three formats, and all three
 * are GMT: `Date.parse` reads the asctime one as local time (hours off on a gateway outside UTC) and takes text that is
 * no HTTP-date at all ("1.5", "-5") for some date of its own, so the formats are matched here.
 */

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAY = "(?:mon|tue|wed|thu|fri|sat|sun)";
const LONG_DAY = "(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)";
const MONTH = `(${MONTHS.join("|")})`;
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";

/** `Sun, 06 Nov 1994 08:49:37 GMT`: the format senders must use. */
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, "i");
/** `Sunday, 06-Nov-94 08:49:37 GMT`: obsolete, two-digit year. */
const RFC_850 = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`, "i");
/** `Sun Nov  6 08:49:37 1994`: obsolete, C's asctime(), no zone (GMT all the same). */
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`, "i");

/**
 * Milliseconds since the epoch of an HTTP-date in any of its three formats, or undefined for any other text (or an
 * impossible date such as 31 Feb). `nowMs` places an RFC 850 two-digit year: one that would be more than 50 years
 * ahead is the most recent past year with those digits.
 */
export function parseHttpDate(text: string, nowMs: number): number | undefined {
  const value = text.trim();
  let match = IMF_FIXDATE.exec(value);
  if (match !== null) return utc(Number(match[3]), match[2], match[1], match.slice(4, 7));
  match = RFC_850.exec(value);
  if (match !== null) {
    const thisYear = new Date(nowMs).getUTCFullYear();
    let year = thisYear - (thisYear % 100) + Number(match[3]);
    if (year > thisYear + 50) year -= 100;
    return utc(year, match[2], match[1], match.slice(4, 7));
  }
  match = ASCTIME.exec(value);
  if (match !== null) return utc(Number(match[6]), match[1], match[2], match.slice(3, 6));
  return undefined;
}

function utc(year: number, monthName: string, dayText: string, time: string[]): number | undefined {
  const month = MONTHS.indexOf(monthName.toLowerCase());
  const day = Number(dayText.trim());
  const [hours, minutes, seconds] = time.map(Number);
  if (hours > 23 || minutes > 59 || seconds > 60) return undefined;
  const ms = Date.UTC(year, month, day, hours, minutes, Math.min(seconds, 59));
  // Date.UTC rolls 31 Feb over into March: a day the month does not have is no date.
  return new Date(ms).getUTCDate() === day ? ms : undefined;
}
