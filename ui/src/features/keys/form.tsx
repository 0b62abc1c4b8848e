/** Form pieces shared by the create and edit dialogs: limits, expiry, model allowlist, field errors. */
import { useId } from "react";
import { isApiError } from "../../lib/api";
import { Field, Input, NativeSelect } from "../../components/ui";
import { LIMIT_FIELDS, type LimitField } from "./types";

export type LimitValues = Record<LimitField, string>;
export type FieldErrors = Partial<Record<string, string>>;

export const NO_LIMITS: LimitValues = {
  requests_per_minute: "0",
  requests_per_day: "0",
  daily_token_limit: "0",
  monthly_token_limit: "0",
};

const MAX_LIMIT = 1_000_000_000_000_000;

/** Parsed limits, or the errors of the fields that are not whole numbers in 0..10^15. */
export function parseLimits(values: LimitValues): { limits: Record<LimitField, number>; errors: FieldErrors } {
  const limits = {} as Record<LimitField, number>;
  const errors: FieldErrors = {};
  for (const { field } of LIMIT_FIELDS) {
    const text = values[field].trim();
    const n = text === "" ? 0 : Number(text);
    if (!Number.isInteger(n) || n < 0 || n > MAX_LIMIT) errors[field] = "Enter a whole number, 0 or more.";
    else limits[field] = n;
  }
  return { limits, errors };
}

/**
 * The field a 400 is about: `ApiError.field`, else the field name its message starts with (the gateway's
 * validation messages read "requests_per_minute must be between …", "expires_at must be in the future").
 */
export function errorField(error: unknown): string | null {
  if (!isApiError(error) || error.status !== 400) return null;
  if (error.field) return error.field;
  return /^([a-z][a-z0-9_]*) /.exec(error.message)?.[1] ?? null;
}

/** The message of a 400 about `field`, for the form control of that field. */
export function apiFieldError(error: unknown, field: string): string | undefined {
  return errorField(error) === field && isApiError(error) ? error.message : undefined;
}

/** True when the error is about one of `fields` (then it is shown at the field, not as a banner). */
export function isFieldError(error: unknown, fields: readonly string[]): boolean {
  const field = errorField(error);
  return field !== null && fields.includes(field);
}

export function LimitInputs({
  values,
  onChange,
  errors,
}: {
  values: LimitValues;
  onChange: (values: LimitValues) => void;
  errors: FieldErrors;
}) {
  return (
    <fieldset className="grid grid-cols-1 gap-3 sm:grid-cols-2">
      <legend className="mb-2 text-sm font-medium">Limits</legend>
      {LIMIT_FIELDS.map(({ field, label }) => (
        <Field key={field} label={label} hint="0 = unlimited" error={errors[field]}>
          <Input
            type="number"
            inputMode="numeric"
            min={0}
            step={1}
            value={values[field]}
            onChange={(e) => onChange({ ...values, [field]: e.target.value })}
          />
        </Field>
      ))}
    </fieldset>
  );
}

export const EXPIRY_PRESETS = [
  { value: "7", label: "In 7 days" },
  { value: "30", label: "In 30 days" },
  { value: "90", label: "In 90 days" },
  { value: "365", label: "In 1 year" },
  { value: "custom", label: "On a date…" },
];

export interface ExpiryValue {
  /** "" (no change / never), a number of days, or "custom". */
  choice: string;
  /** `datetime-local` value when choice is "custom". */
  date: string;
}

/** The expiry as an ISO timestamp; null for none; "invalid" when the custom date is missing or bad. */
export function expiryToIso(value: ExpiryValue, now: Date = new Date()): string | null | "invalid" {
  if (value.choice === "") return null;
  if (value.choice === "custom") {
    const d = new Date(value.date);
    return value.date && !Number.isNaN(d.getTime()) ? d.toISOString() : "invalid";
  }
  return new Date(now.getTime() + Number(value.choice) * 24 * 3600 * 1000).toISOString();
}

export function ExpiryInput({
  value,
  onChange,
  emptyLabel,
  hint,
  error,
}: {
  value: ExpiryValue;
  onChange: (value: ExpiryValue) => void;
  /** The label of the "" choice: "Never" when creating, "Keep the current expiry" when editing. */
  emptyLabel: string;
  hint?: string;
  error?: string;
}) {
  return (
    <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
      <Field label="Expiry" hint={hint} error={value.choice === "custom" ? undefined : error}>
        <NativeSelect
          value={value.choice}
          onChange={(e) => onChange({ ...value, choice: e.target.value })}
          options={[{ value: "", label: emptyLabel }, ...EXPIRY_PRESETS]}
        />
      </Field>
      {value.choice === "custom" ? (
        <Field label="Expiry date" error={error}>
          <Input type="datetime-local" value={value.date} onChange={(e) => onChange({ ...value, date: e.target.value })} />
        </Field>
      ) : null}
    </div>
  );
}

/** Checkboxes over the models the session may use; none checked = no restriction on the key. */
export function ModelChoice({
  models,
  selected,
  onChange,
  error,
}: {
  models: string[];
  selected: string[];
  onChange: (selected: string[]) => void;
  error?: string;
}) {
  const hintId = useId();
  const toggle = (name: string, on: boolean) =>
    onChange(on ? [...selected, name] : selected.filter((m) => m !== name));
  return (
    <fieldset aria-describedby={hintId} className="flex flex-col gap-2">
      <legend className="text-sm font-medium">Allowed models</legend>
      <p id={hintId} className="text-xs text-muted">
        Check none to allow every model the key's team and organization allow.
      </p>
      {models.length === 0 ? <p className="text-sm text-muted">No models are available.</p> : null}
      <div className="grid max-h-48 grid-cols-1 gap-1 overflow-y-auto sm:grid-cols-2">
        {models.map((name) => (
          <label key={name} className="flex items-center gap-2 text-sm">
            <input
              type="checkbox"
              className="h-4 w-4"
              checked={selected.includes(name)}
              onChange={(e) => toggle(name, e.target.checked)}
            />
            <span className="break-all">{name}</span>
          </label>
        ))}
      </div>
      {error ? <p className="text-xs text-danger">{error}</p> : null}
    </fieldset>
  );
}
