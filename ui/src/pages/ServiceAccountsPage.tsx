import { useMemo, useState } from "react";
import { Link } from "react-router";
import { useCurrentUser } from "../lib/auth";
import { formatNumber } from "../lib/format";
import { hasRole } from "../lib/roles";
import {
  Button,
  Card,
  CardContent,
  DateTime,
  ItemsTable,
  PageHeader,
  TD,
  TR,
} from "../components/ui";
import { AccountDialog, DeleteAccountDialog } from "../features/service-accounts/AccountDialogs";
import { useAccounts, type ServiceAccount } from "../features/service-accounts/data";
import { administers, useTeamList } from "../features/teams/data";

/** Service accounts: list, create, rename, delete; their keys are on the API Keys page. */
export default function ServiceAccountsPage() {
  const me = useCurrentUser();
  const accounts = useAccounts();
  const teams = useTeamList();
  const [editing, setEditing] = useState<ServiceAccount | null>(null);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<ServiceAccount | null>(null);
  const teamNames = useMemo(() => new Map((teams.data?.items ?? []).map((t) => [t.id, t.name])), [teams.data]);
  const ownTeams = (teams.data?.items ?? []).filter((t) => administers(me, t.id));
  const createButton = <Button onClick={() => setCreating(true)}>Create service account</Button>;
  const keysNote = hasRole(me, "org_admin")
    ? "Create their keys on the API Keys page (key type: service account key)."
    : "Organization admins create their keys on the API Keys page.";
  return (
    <>
      <PageHeader title="Service Accounts" description={`Identities for automation, owned by the organization or a team. ${keysNote}`} actions={createButton} />
      <Card>
        <CardContent className="pt-4">
          <ItemsTable
            query={accounts}
            noun="service accounts"
            caption="Service accounts"
            headers={["Name", "Owner", "Keys", "Created"]}
            emptyAction={createButton}
          >
            {(account) => (
              <TR key={account.id}>
                <TD className="font-medium">{account.name}</TD>
                <TD>{account.team_id ? (teamNames.get(account.team_id) ?? "Team") : "Organization"}</TD>
                <TD>
                  <Link
                    className="text-primary underline-offset-2 hover:underline"
                    to={`/keys?account=${encodeURIComponent(account.id)}`}
                    aria-label={`Keys of ${account.name}: ${formatNumber(account.key_count)}`}
                  >
                    {formatNumber(account.key_count)}
                  </Link>
                </TD>
                <TD>
                  <DateTime value={account.created_at} />
                </TD>
                <TD className="whitespace-nowrap text-right">
                  <Button variant="ghost" size="sm" aria-label={`Rename ${account.name}`} onClick={() => setEditing(account)}>
                    Rename
                  </Button>
                  <Button variant="ghost" size="sm" aria-label={`Delete ${account.name}`} onClick={() => setDeleting(account)}>
                    Delete
                  </Button>
                </TD>
              </TR>
            )}
          </ItemsTable>
        </CardContent>
      </Card>
      <AccountDialog
        open={creating || editing !== null}
        account={editing}
        teams={ownTeams}
        onOpenChange={(open) => {
          if (!open) {
            setCreating(false);
            setEditing(null);
          }
        }}
      />
      <DeleteAccountDialog account={deleting} onClose={() => setDeleting(null)} />
    </>
  );
}
