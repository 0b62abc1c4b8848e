import { Card, CardContent, EmptyState, QueryView } from "../../components/ui";
import { useCurrentUser } from "../../lib/auth";
import { useOrgTeams } from "../teams/data";
import { TeamsTable } from "../teams/TeamsTable";

/**
 * An organization's Teams tab (`/orgs/:orgId/teams`, system admins): its teams with their counts and limits.
 * The teams of the viewer's own organization open on the Teams page, which manages them; another
 * organization's are listed read-only.
 */
export function OrgTeams({ orgId }: { orgId: string }) {
  const me = useCurrentUser();
  const teams = useOrgTeams(orgId);
  const own = orgId === me.org_id;
  return (
    <Card>
      <CardContent className="pt-4">
        {own ? null : <p className="mb-4 text-sm text-muted">The Teams page manages the teams of your own organization; these are listed read-only.</p>}
        <QueryView
          query={teams}
          loadingLabel="Loading teams"
          errorTitle="Could not load the teams"
          isEmpty={(data) => data.items.length === 0}
          empty={<EmptyState title="No teams yet" />}
        >
          {(data) => (
            <TeamsTable teams={data.items} link={(team) => (own ? `/teams/${encodeURIComponent(team.id)}/members` : null)} />
          )}
        </QueryView>
      </CardContent>
    </Card>
  );
}
