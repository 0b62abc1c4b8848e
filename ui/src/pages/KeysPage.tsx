import { useMemo, useState } from "react";
import { useSearchParams } from "react-router";
import { useCurrentUser } from "../lib/auth";
import { useOrgId } from "../lib/viewedOrg";
import { formatNumber } from "../lib/format";
import { hasRole } from "../lib/roles";
import {
  Button,
  Card,
  CardContent,
  CardHeader,
  EmptyState,
  Field,
  Input,
  NativeSelect,
  PageHeader,
  QueryView,
  StatCard,
} from "../components/ui";
import { CreateKeyDialog } from "../features/keys/CreateKeyDialog";
import { EditKeyDialog } from "../features/keys/EditKeyDialog";
import { RevokeKeyDialog, RotateKeyDialog } from "../features/keys/KeyActions";
import { KeysTable } from "../features/keys/KeysTable";
import {
  countKeys,
  EXPIRING_SOON_DAYS,
  KEY_TYPE_LABELS,
  keyStatus,
  MAX_PAGES,
  useKeys,
  useServiceAccounts,
  useTeams,
} from "../features/keys/data";
import type { KeyOut } from "../features/keys/types";

const STATUS_OPTIONS = [
  { value: "active", label: "Active" },
  { value: "expiring", label: "Expiring soon" },
  { value: "expired", label: "Expired" },
];
const PAGE_SIZE = 50;
const keyCount = (n: number) => (n === 1 ? "1 key" : `${formatNumber(n)} keys`);

/** API Keys: counts, filters and search (kept in the URL), create / edit / rotate / revoke. */
export default function KeysPage() {
  const me = useCurrentUser();
  const orgId = useOrgId();
  const keys = useKeys(orgId);
  const teams = useTeams(orgId);
  const accounts = useServiceAccounts(me, orgId);
  const [params, setParams] = useSearchParams();
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<KeyOut | null>(null);
  const [rotating, setRotating] = useState<KeyOut | null>(null);
  const [revoking, setRevoking] = useState<KeyOut | null>(null);
  const [shown, setShown] = useState(PAGE_SIZE);

  const q = params.get("q") ?? "";
  const status = params.get("status") ?? "";
  const type = params.get("type") ?? "";
  const team = params.get("team") ?? "";
  const account = params.get("account") ?? "";
  const setParam = (name: string, value: string) => {
    setParams(
      (prev) => {
        const next = new URLSearchParams(prev);
        if (value) next.set(name, value);
        else next.delete(name);
        return next;
      },
      { replace: true },
    );
    setShown(PAGE_SIZE);
  };

  const teamNames = useMemo(() => new Map((teams.data?.items ?? []).map((t) => [t.id, t.name])), [teams.data]);
  const accountNames = useMemo(
    () => new Map((accounts.data?.items ?? []).map((a) => [a.id, a.name])),
    [accounts.data],
  );
  const all = keys.data?.items;
  const counts = useMemo(() => (all ? countKeys(all) : null), [all]);
  const filtered = useMemo(() => {
    if (!all) return [];
    const now = new Date();
    const needle = q.trim().toLowerCase();
    return all.filter(
      (key) =>
        (!status || keyStatus(key, now) === status) &&
        (!type || key.key_type === type) &&
        (!team || key.team_id === team) &&
        (!account || key.service_account_id === account) &&
        (!needle || key.name.toLowerCase().includes(needle) || key.key_hint.toLowerCase().includes(needle)),
    );
  }, [all, q, status, type, team, account]);
  const filtering = Boolean(q || status || type || team || account);
  const createButton = <Button onClick={() => setCreating(true)}>Create key</Button>;

  return (
    <>
      <PageHeader
        title="API Keys"
        description="Keys for the OpenAI-compatible endpoints. A key's value is shown once, when it is created."
        actions={createButton}
      />
      <section aria-label="Key counts" className="mb-6 grid grid-cols-3 gap-2 sm:gap-4">
        <StatCard label="Total keys" value={formatNumber(counts?.total)} loading={keys.isPending} />
        <StatCard label="Active keys" value={formatNumber(counts?.active)} loading={keys.isPending} />
        <StatCard
          label="Expiring soon"
          value={formatNumber(counts?.expiring)}
          hint={`Within ${formatNumber(EXPIRING_SOON_DAYS)} days`}
          loading={keys.isPending}
        />
      </section>
      <Card>
        <CardHeader title="Keys" />
        <CardContent className="flex flex-col gap-4">
          <div role="search" aria-label="Filter keys" className="grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-4">
            <Field label="Search">
              <Input type="search" placeholder="Name or key hint" value={q} onChange={(e) => setParam("q", e.target.value)} />
            </Field>
            <Field label="Status">
              <NativeSelect
                value={status}
                onChange={(e) => setParam("status", e.target.value)}
                placeholder="All statuses"
                options={STATUS_OPTIONS}
              />
            </Field>
            {hasRole(me, "team_admin") ? (
              <Field label="Type">
                <NativeSelect
                  value={type}
                  onChange={(e) => setParam("type", e.target.value)}
                  placeholder="All types"
                  options={Object.entries(KEY_TYPE_LABELS).map(([value, label]) => ({ value, label }))}
                />
              </Field>
            ) : null}
            {(teams.data?.items.length ?? 0) > 0 ? (
              <Field label="Team">
                <NativeSelect
                  value={team}
                  onChange={(e) => setParam("team", e.target.value)}
                  placeholder="All teams"
                  options={(teams.data?.items ?? []).map((t) => ({ value: t.id, label: t.name }))}
                />
              </Field>
            ) : null}
            {(accounts.data?.items.length ?? 0) > 0 ? (
              <Field label="Service account">
                <NativeSelect
                  value={account}
                  onChange={(e) => setParam("account", e.target.value)}
                  placeholder="All service accounts"
                  options={(accounts.data?.items ?? []).map((a) => ({ value: a.id, label: a.name }))}
                />
              </Field>
            ) : null}
          </div>
          <QueryView
            query={keys}
            loadingLabel="Loading keys"
            errorTitle="Could not load the keys"
            isEmpty={(data) => data.items.length === 0}
            empty={
              <EmptyState
                title="No keys yet"
                description="Create a key to call the gateway from your applications."
                action={createButton}
              />
            }
          >
            {(data) =>
              filtered.length === 0 ? (
                <EmptyState
                  title="No keys match"
                  description={filtering ? "Change the search or the filters." : undefined}
                  action={
                    <Button variant="secondary" onClick={() => setParams({}, { replace: true })}>
                      Clear filters
                    </Button>
                  }
                />
              ) : (
                <div className="flex flex-col gap-3">
                  <p className="text-sm text-muted" aria-live="polite">
                    {filtering
                      ? `${formatNumber(filtered.length)} of ${keyCount(data.items.length)}`
                      : keyCount(data.items.length)}
                  </p>
                  <KeysTable
                    keys={filtered.slice(0, shown)}
                    teamNames={teamNames}
                    accountNames={accountNames}
                    onEdit={setEditing}
                    onRotate={setRotating}
                    onRevoke={setRevoking}
                  />
                  {filtered.length > shown ? (
                    <div>
                      <Button variant="secondary" onClick={() => setShown((n) => n + PAGE_SIZE)}>
                        Show more keys
                      </Button>
                    </div>
                  ) : null}
                  {data.truncated ? (
                    <p className="text-sm text-muted">
                      Only the first {formatNumber(MAX_PAGES * 100)} keys are loaded.
                    </p>
                  ) : null}
                </div>
              )
            }
          </QueryView>
        </CardContent>
      </Card>
      <CreateKeyDialog open={creating} onOpenChange={setCreating} />
      <EditKeyDialog apiKey={editing} onClose={() => setEditing(null)} />
      <RotateKeyDialog apiKey={rotating} onClose={() => setRotating(null)} />
      <RevokeKeyDialog apiKey={revoking} onClose={() => setRevoking(null)} />
    </>
  );
}
