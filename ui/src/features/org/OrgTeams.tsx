import { useState } from "react";
import { Link } from "react-router";
import { Button, Card, CardContent, EmptyState, QueryView } from "../../components/ui";
import { useOrgId } from "../../lib/viewedOrg";
import { CreateTeamDialog } from "../teams/CreateTeamDialog";
import { useOrgTeams } from "../teams/data";
import { TeamsTable } from "../teams/TeamsTable";

/**
 * An organization's Teams tab (`/orgs/:orgId/teams`, or `/org/teams` while a system admin views another
 * organization): its teams with their counts and limits, a team's name opening its pages, and "Create team".
 * Opening `/orgs/:orgId/...` makes that organization the one being viewed (lib/viewedOrg.tsx), so the Teams
 * pages the links lead to manage this organization's teams; should the two ever differ, the rows do not link.
 */
export function OrgTeams({ orgId }: { orgId: string }) {
  const viewed = useOrgId();
  const teams = useOrgTeams(orgId);
  const [creating, setCreating] = useState(false);
  const manageable = orgId === viewed;
  const createButton = manageable ? <Button onClick={() => setCreating(true)}>Create team</Button> : null;
  return (
    <Card>
      <CardContent className="pt-4">
        {manageable ? (
          <div className="mb-4 flex flex-wrap items-center justify-between gap-2">
            <p className="text-sm text-muted">A team's name opens its members, models, MCP access and settings.</p>
            <div className="flex gap-2">
              <Button asChild variant="secondary">
                <Link to="/teams">Teams page</Link>
              </Button>
              {createButton}
            </div>
          </div>
        ) : null}
        <QueryView
          query={teams}
          loadingLabel="Loading teams"
          errorTitle="Could not load the teams"
          isEmpty={(data) => data.items.length === 0}
          empty={<EmptyState title="No teams yet" action={createButton} />}
        >
          {(data) => (
            <TeamsTable teams={data.items} link={(team) => (manageable ? `/teams/${encodeURIComponent(team.id)}/members` : null)} />
          )}
        </QueryView>
      </CardContent>
      {manageable ? <CreateTeamDialog open={creating} onOpenChange={setCreating} /> : null}
    </Card>
  );
}
