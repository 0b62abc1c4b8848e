import { CopyButton, Field, Input } from "../../components/ui";

/**
 * A new key's plaintext, shown once. The value lives only in the state of the dialog that shows it (never in
 * storage, the URL or the query cache) and is gone when that dialog closes.
 */
export function KeyReveal({ plaintext, label = "API key" }: { plaintext: string; label?: string }) {
  return (
    <div className="flex flex-col gap-3">
      <div role="alert" className="rounded-md border border-warning/50 px-3 py-2 text-sm">
        <strong className="text-warning">Copy this key now.</strong> It is shown only once: after you close this dialog
        it cannot be shown again.
      </div>
      <div className="flex flex-wrap items-end gap-2">
        <Field label={label} className="min-w-0 flex-1">
          <Input
            readOnly
            value={plaintext}
            className="font-mono"
            autoComplete="off"
            spellCheck={false}
            onFocus={(e) => e.currentTarget.select()}
          />
        </Field>
        <CopyButton value={plaintext} size="md" />
      </div>
    </div>
  );
}
