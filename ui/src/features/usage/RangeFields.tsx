/** The date range both report pages keep in the URL (the usage tabs and the cost report) and the fields choosing it. */
import { useSearchParams } from "react-router";
import { Field, Input, NativeSelect } from "../../components/ui";
import { formatDate } from "../../lib/format";
import { DEFAULT_PRESET, PRESETS, resolveRange, utcDay, type Range } from "./params";

/** Sets several search params at once; null or "" removes one. */
export type UpdateParams = (changes: Record<string, string | null>, replace?: boolean) => void;

export function useParamsUpdate(): [URLSearchParams, UpdateParams] {
  const [params, setParams] = useSearchParams();
  const update: UpdateParams = (changes, replace = false) =>
    setParams(
      (prev) => {
        const next = new URLSearchParams(prev);
        for (const [k, v] of Object.entries(changes)) {
          if (v === null || v === "") next.delete(k);
          else next.set(k, v);
        }
        return next;
      },
      { replace },
    );
  return [params, update];
}

export interface UrlRange {
  preset: string;
  fromDay: string;
  toDay: string;
  range: Range | undefined;
  rangeError: string | undefined;
}

/** The range in `range`, `from` and `to` (UTC days), resolved. */
export function readRange(params: URLSearchParams): UrlRange {
  const preset = params.get("range") ?? DEFAULT_PRESET;
  const fromDay = params.get("from") ?? "";
  const toDay = params.get("to") ?? "";
  const { range, error } = resolveRange(preset, fromDay, toDay);
  return { preset, fromDay, toDay, range, rangeError: error };
}

/** "Dec 1, 2026 – Dec 7, 2026": the UTC days of [from, to). */
export function rangeText(range: Range): string {
  const day = (t: number) => {
    const [y, m, d] = utcDay(t).split("-").map(Number);
    return formatDate(new Date(y ?? 1970, (m ?? 1) - 1, d ?? 1));
  };
  const from = day(Date.parse(range.from));
  const to = day(Date.parse(range.to) - 1);
  return from === to ? from : `${from} – ${to}`;
}

/** The "Date range" select and, for a custom range, its From and To days. */
export function RangeFields({ value, update }: { value: UrlRange; update: UpdateParams }) {
  const { preset, fromDay, toDay, range, rangeError } = value;
  return (
    <>
      <Field label="Date range" className="w-full sm:w-48">
        <NativeSelect
          value={preset === "custom" ? "custom" : PRESETS.some((p) => p.value === preset) ? preset : DEFAULT_PRESET}
          onChange={(e) => {
            const chosen = e.target.value;
            if (chosen !== "custom") return update({ range: chosen === DEFAULT_PRESET ? null : chosen, from: null, to: null });
            const current = range ?? resolveRange(DEFAULT_PRESET, "", "").range!;
            update({ range: "custom", from: utcDay(Date.parse(current.from)), to: utcDay(Date.parse(current.to) - 1) });
          }}
          options={[...PRESETS.map((p) => ({ value: p.value, label: p.label })), { value: "custom", label: "Custom range" }]}
        />
      </Field>
      {preset === "custom" ? (
        <>
          <Field label="From" hint="UTC day" error={rangeError} className="w-full sm:w-44">
            <Input type="date" value={fromDay} max={toDay || undefined} onChange={(e) => update({ from: e.target.value })} />
          </Field>
          <Field label="To" hint="UTC day, included" className="w-full sm:w-44">
            <Input type="date" value={toDay} min={fromDay || undefined} onChange={(e) => update({ to: e.target.value })} />
          </Field>
        </>
      ) : null}
    </>
  );
}
