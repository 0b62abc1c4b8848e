import type { ReactNode } from "react";
import { Badge, Card, CardContent, CardHeader, QueryView } from "../../components/ui";
import { roleLabel } from "../../lib/roles";
import { callbackUrl, GROUP_SYNC_OPTIONS, useGlobalSso } from "./data";
import { SsoTest } from "./SsoTest";
import type { GlobalSsoOut } from "./types";

const list = (items: string[], none: string) => (items.length > 0 ? items.join(", ") : none);

function rows(sso: GlobalSsoOut): [string, ReactNode][] {
  return [
    ["Issuer URL", sso.issuer || "Not set"],
    ["Client ID", sso.client_id || "Not set"],
    ["Client secret", sso.client_secret_set ? "Set" : "Not set"],
    ["Redirect URL", sso.redirect_url ?? `${callbackUrl()} (default)`],
    ["Scopes", list(sso.scopes, "None")],
    ["Allowed email domains", list(sso.allowed_domains, "None: no new accounts")],
    ["Create accounts at first sign-in", sso.auto_provision ? "Yes" : "No"],
    ["Role in teams made from groups", roleLabel(sso.default_role)],
    ["Organization of new users", sso.default_org_slug || "Not set"],
    ["Group sync", GROUP_SYNC_OPTIONS.find((o) => o.value === sso.group_sync)?.label ?? sso.group_sync],
    ["Groups claim", sso.group_claim],
    ...(sso.id_token_algorithms ? [["ID token algorithms", list(sso.id_token_algorithms, "None")] as [string, ReactNode]] : []),
  ];
}

/** The global provider (system admins): read-only, it is set in voidllm.yaml; with a connection test. */
export function GlobalSso() {
  const sso = useGlobalSso();
  return (
    <Card>
      <CardHeader
        title="Global provider"
        description="Set in voidllm.yaml (settings.sso) and read-only here. Users of organizations without a provider of their own sign in with it."
        actions={
          sso.data ? (
            <Badge tone={sso.data.configured && sso.data.enabled ? "success" : "neutral"}>
              {!sso.data.configured ? "Not configured" : sso.data.enabled ? "Enabled" : "Disabled"}
            </Badge>
          ) : undefined
        }
      />
      <CardContent>
        <QueryView query={sso} loadingLabel="Loading the global provider" errorTitle="Could not load the global provider">
          {(data) =>
            data.configured ? (
              <div className="flex flex-col gap-4">
                <dl aria-label="Global provider settings" className="grid grid-cols-1 gap-2 text-sm sm:grid-cols-2">
                  {rows(data).map(([label, value]) => (
                    <div key={label} className="flex flex-col gap-0.5 rounded-md border border-border px-3 py-2">
                      <dt className="text-muted">{label}</dt>
                      <dd className="break-all">{value}</dd>
                    </div>
                  ))}
                </dl>
                <SsoTest path="settings/sso/test" />
              </div>
            ) : (
              <p className="text-sm text-muted">
                No global provider is set up. Add <code>settings.sso</code> to voidllm.yaml to have one, or set up a
                provider per organization below.
              </p>
            )
          }
        </QueryView>
      </CardContent>
    </Card>
  );
}
