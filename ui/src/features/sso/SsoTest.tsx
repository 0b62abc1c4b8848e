import { useMutation } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { Button, InlineError } from "../../components/ui";
import type { SsoTestResult } from "./types";

/**
 * "Test connection": POST `path` (with the unsaved form's fields, or none for the global provider); shows
 * what discovery and the JWKS gave, or why they failed.
 */
export function SsoTest({ path, body, disabled = false }: { path: string; body?: () => unknown; disabled?: boolean }) {
  const test = useMutation({
    mutationFn: () => api.post<SsoTestResult>(path, body?.()),
    gcTime: 0,
  });
  const result = test.data;
  return (
    <div className="flex flex-col gap-2">
      <div>
        <Button variant="secondary" loading={test.isPending} disabled={disabled} onClick={() => test.mutate()}>
          Test connection
        </Button>
      </div>
      <div role="status" aria-live="polite">
        {result && !test.isPending ? (
          result.ok ? (
            <div className="rounded-md border border-success/40 px-3 py-2 text-sm">
              <p className="font-medium text-success">Connection works</p>
              <dl className="mt-1 grid grid-cols-[auto_1fr] gap-x-3 gap-y-1">
                <dt className="text-muted">Issuer</dt>
                <dd className="break-all">{result.issuer}</dd>
                <dt className="text-muted">Authorization endpoint</dt>
                <dd className="break-all">{result.authorization_endpoint ?? "Not announced"}</dd>
                <dt className="text-muted">Signing keys</dt>
                <dd className="tabular-nums">{result.jwks_keys}</dd>
              </dl>
            </div>
          ) : (
            <p className="rounded-md border border-danger/40 px-3 py-2 text-sm text-danger">
              Connection failed: {result.error ?? "the provider did not answer as expected."}
            </p>
          )
        ) : null}
      </div>
      {test.isError ? <InlineError error={test.error} /> : null}
    </div>
  );
}
