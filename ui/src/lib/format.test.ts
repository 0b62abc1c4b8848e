import { describe, expect, it } from "vitest";
import { formatDay, formatCompact, formatCurrency, formatDuration, formatNumber, formatPercent, formatRelative, formatWait } from "./format";
import { toCsv } from "./download";

describe("format", () => {
  it("formats with Intl for the locale and dashes what is missing", () => {
    expect(formatNumber(1234567)).toBe(new Intl.NumberFormat().format(1234567));
    expect(formatNumber(null)).toBe("—");
    expect(formatNumber(Number.NaN)).toBe("—");
    expect(formatCompact(1_200_000)).toBe(new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 }).format(1_200_000));
    expect(formatCurrency(0.00042)).toContain("0.0004");
    expect(formatCurrency(12.5)).toContain("12.50");
    expect(formatPercent(87.5)).toContain("87.5");
    expect(formatDuration(850)).toContain("850");
    expect(formatDuration(1500)).toContain("s");
  });

  it("formats a calendar day without the year, the same day in every time zone", () => {
    const expected = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" }).format(new Date(2026, 11, 6));
    expect(formatDay("2026-12-06")).toBe(expected);
    expect(formatDay(new Date(2026, 11, 6, 23, 30))).toBe(expected);
    expect(formatDay(null)).toBe("—");
  });

  it("says how long to wait", () => {
    expect(formatWait(42)).toMatch(/42/);
    expect(formatWait(125)).toMatch(/3/);
  });

  it("formats relative times", () => {
    const now = new Date("2026-01-01T12:00:00Z");
    expect(formatRelative("2026-01-01T15:00:00Z", now)).toBe(new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(3, "hour"));
  });
});

describe("toCsv", () => {
  it("quotes, escapes and defuses formulas", () => {
    const csv = toCsv(
      [{ a: 'x,"y"', b: 3 }, { a: "=SUM(A1)", b: null }],
      [
        { header: "A", value: (r: { a: string; b: number | null }) => r.a },
        { header: "B", value: (r) => r.b },
      ],
    );
    expect(csv).toBe('A,B\r\n"x,""y""",3\r\n\'=SUM(A1),\r\n');
  });
});

