/**
 * Numbers, money, dates and durations for the browser's locale (Intl with `undefined` locale = the
 * browser's). Every number or date a page shows goes through these.
 */

const cache = new Map<string, Intl.NumberFormat>();

function nf(options: Intl.NumberFormatOptions): Intl.NumberFormat {
  const key = JSON.stringify(options);
  let f = cache.get(key);
  if (!f) {
    f = new Intl.NumberFormat(undefined, options);
    cache.set(key, f);
  }
  return f;
}

const DASH = "—";
const ok = (n: number | null | undefined): n is number => typeof n === "number" && Number.isFinite(n);

/** 1234567 → "1,234,567" (locale grouping). */
export function formatNumber(n: number | null | undefined, maximumFractionDigits = 0): string {
  return ok(n) ? nf({ maximumFractionDigits }).format(n) : DASH;
}

/** 1234567 → "1.2M" (compact, for stat cards and chart axes). */
export function formatCompact(n: number | null | undefined): string {
  return ok(n) ? nf({ notation: "compact", maximumFractionDigits: 1 }).format(n) : DASH;
}

/**
 * An estimated cost. Small amounts keep up to 4 decimals (token prices are tiny): 0.00042 → "$0.0004".
 */
export function formatCurrency(n: number | null | undefined, currency = "USD"): string {
  if (!ok(n)) return DASH;
  const digits = n !== 0 && Math.abs(n) < 1 ? 4 : 2;
  return nf({ style: "currency", currency, minimumFractionDigits: 2, maximumFractionDigits: digits }).format(n);
}

/** A percentage given as 0..100 (as the API sends `percent_used`): 87.5 → "87.5%". */
export function formatPercent(percent: number | null | undefined, maximumFractionDigits = 1): string {
  return ok(percent) ? nf({ style: "percent", maximumFractionDigits }).format(percent / 100) : DASH;
}

/** Milliseconds → "850 ms" / "1.2 s" / "3 min". */
export function formatDuration(ms: number | null | undefined): string {
  if (!ok(ms)) return DASH;
  if (ms < 1000) return `${formatNumber(ms)} ms`;
  if (ms < 60_000) return `${formatNumber(ms / 1000, 1)} s`;
  return `${formatNumber(ms / 60_000, 1)} min`;
}

function toDate(value: string | number | Date | null | undefined): Date | null {
  if (value === null || value === undefined || value === "") return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "Dec 6, 2026, 5:02 AM" in the browser's locale and time zone. */
export function formatDateTime(value: string | number | Date | null | undefined): string {
  const d = toDate(value);
  return d ? new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(d) : DASH;
}

/** "Dec 6, 2026". */
export function formatDate(value: string | number | Date | null | undefined): string {
  const d = toDate(value);
  return d ? new Intl.DateTimeFormat(undefined, { dateStyle: "medium" }).format(d) : DASH;
}

/**
 * "Dec 6" (month and day, chart ticks of daily data). A bare calendar day `YYYY-MM-DD` (the API's UTC day
 * keys) is shown as that same day, whatever the browser's time zone.
 */
export function formatDay(value: string | number | Date | null | undefined): string {
  const day = typeof value === "string" ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(value) : null;
  const d = day ? new Date(Number(day[1]), Number(day[2]) - 1, Number(day[3])) : toDate(value);
  return d ? new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" }).format(d) : DASH;
}

/** "05:00" (chart ticks of hourly data). */
export function formatTime(value: string | number | Date | null | undefined): string {
  const d = toDate(value);
  return d ? new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" }).format(d) : DASH;
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

/** "in 3 hours" / "5 minutes ago" relative to `now`. */
export function formatRelative(
  value: string | number | Date | null | undefined,
  now: Date = new Date(),
): string {
  const d = toDate(value);
  if (!d) return DASH;
  const seconds = Math.round((d.getTime() - now.getTime()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") return rtf.format(Math.round(seconds / size), unit);
  }
  return rtf.format(0, "second");
}

/** Seconds to wait → "42 seconds" / "3 minutes" (throttling messages). */
export function formatWait(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return new Intl.NumberFormat(undefined, { style: "unit", unit: "second", unitDisplay: "long" }).format(s);
  return new Intl.NumberFormat(undefined, { style: "unit", unit: "minute", unitDisplay: "long" }).format(
    Math.ceil(s / 60),
  );
}
