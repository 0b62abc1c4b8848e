import { useMutation } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { Button, InlineError } from "../../components/ui";
import type { ConnectionResult } from "./types";

/** "Test connection": POST /models/test-connection with the form's provider, base URL and (typed) key. */
export function ConnectionTest({
  provider,
  baseUrl,
  apiKey,
  label = "Test connection",
  keyStored,
}: {
  provider: string;
  baseUrl: string;
  apiKey: string;
  /** Accessible name when there are several testers in one form. */
  label?: string;
  /** A key is stored but not typed: it is never sent back to the browser, so the test goes without it. */
  keyStored: boolean;
}) {
  const test = useMutation({
    mutationFn: () =>
      api.post<ConnectionResult>("models/test-connection", { provider, base_url: baseUrl.trim(), api_key: apiKey }),
    gcTime: 0,
  });
  return (
    <div className="flex flex-col gap-2">
      <div className="flex flex-wrap items-center gap-2">
        <Button
          variant="secondary"
          size="sm"
          aria-label={label}
          loading={test.isPending}
          disabled={!baseUrl.trim()}
          onClick={() => test.mutate()}
        >
          Test connection
        </Button>
        {keyStored && !apiKey ? (
          <span className="text-xs text-muted">The stored key is never sent back: type it to test with it.</span>
        ) : null}
      </div>
      <div role="status" aria-live="polite">
        {test.data ? (
          <p className={test.data.success ? "text-sm text-success" : "text-sm text-danger"}>
            {test.data.success ? "Connection works: " : "Connection failed: "}
            {test.data.message}
          </p>
        ) : null}
      </div>
      {test.isError ? <InlineError error={test.error} /> : null}
    </div>
  );
}
