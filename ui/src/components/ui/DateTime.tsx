import { formatDateTime, formatRelative } from "../../lib/format";

export interface DateTimeProps {
  /** ISO 8601 string (as the API sends), epoch ms or Date. */
  value: string | number | Date | null | undefined;
  /** "in 3 hours" instead of the date (the full date is in the title). */
  relative?: boolean;
  className?: string;
}

/** A <time> in the browser's locale and time zone. */
export function DateTime({ value, relative = false, className }: DateTimeProps) {
  if (value === null || value === undefined || value === "") return <span className={className}>—</span>;
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return <span className={className}>—</span>;
  const full = formatDateTime(d);
  return (
    <time dateTime={d.toISOString()} title={full} className={className}>
      {relative ? formatRelative(d) : full}
    </time>
  );
}
