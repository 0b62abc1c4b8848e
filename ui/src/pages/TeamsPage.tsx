import { useState } from "react";
import { Link, Navigate, useNavigate, useParams } from "react-router";
import { useCurrentUser } from "../lib/auth";
import { useViewedOrg } from "../lib/viewedOrg";
import {
  Badge,
  Button,
  Card,
  CardContent,
  EmptyState,
  PageHeader,
  QueryView,
  Tabs,
  TabsContent,
  TabsList,
  TabsTrigger,
  useDocumentTitle,
} from "../components/ui";
import { CreateTeamDialog } from "../features/teams/CreateTeamDialog";
import { administers, canManageOrgTeams, useTeam, useTeamList } from "../features/teams/data";
import { TeamMcpAccess } from "../features/teams/TeamMcpAccess";
import { TeamMembers } from "../features/teams/TeamMembers";
import { TeamModels } from "../features/teams/TeamModels";
import { TeamSettings } from "../features/teams/TeamSettings";
import { TeamsTable } from "../features/teams/TeamsTable";
import type { Team } from "../features/teams/types";

const TABS = [
  { value: "members", label: "Members" },
  { value: "models", label: "Models" },
  { value: "mcp-access", label: "MCP access" },
  { value: "settings", label: "Settings" },
] as const;
type Tab = (typeof TABS)[number]["value"];

/** Teams: `/teams` (the list) and `/teams/:teamId/{members,models,mcp-access,settings}`. */
export default function TeamsPage() {
  const parts = (useParams()["*"] ?? "").split("/").filter(Boolean);
  if (parts.length === 0) return <TeamList />;
  const [teamId, tab] = parts as [string, string | undefined];
  if (tab === undefined) return <Navigate to={`/teams/${encodeURIComponent(teamId)}/members`} replace />;
  return <TeamDetail teamId={teamId} tab={tab} />;
}

function TeamList() {
  const me = useCurrentUser();
  const teams = useTeamList();
  const { isOwn } = useViewedOrg();
  const [creating, setCreating] = useState(false);
  const orgAdmin = canManageOrgTeams(me);
  const createButton = orgAdmin ? <Button onClick={() => setCreating(true)}>Create team</Button> : null;
  const mine = (team: Team) => orgAdmin || administers(me, team.id);
  return (
    <>
      <PageHeader
        title="Teams"
        description={
          orgAdmin
            ? `Every team of ${isOwn ? "your organization" : "the organization being viewed"}: members, limits, models and MCP access.`
            : "The teams you belong to."
        }
        actions={createButton}
      />
      <Card>
        <CardContent className="pt-4">
          <QueryView
            query={teams}
            loadingLabel="Loading teams"
            errorTitle="Could not load the teams"
            isEmpty={(data) => data.items.length === 0}
            empty={<EmptyState title="No teams yet" description={orgAdmin ? "Create a team to share limits and models." : undefined} action={createButton} />}
          >
            {(data) => (
              <TeamsTable
                teams={data.items}
                link={(team) => (mine(team) ? `/teams/${encodeURIComponent(team.id)}/members` : null)}
                badge={(team) =>
                  !orgAdmin && administers(me, team.id) ? (
                    <Badge tone="primary" className="ml-2">
                      Team admin
                    </Badge>
                  ) : null
                }
              />
            )}
          </QueryView>
        </CardContent>
      </Card>
      <CreateTeamDialog open={creating} onOpenChange={setCreating} />
    </>
  );
}

function TeamDetail({ teamId, tab }: { teamId: string; tab: string }) {
  const me = useCurrentUser();
  const team = useTeam(teamId);
  const navigate = useNavigate();
  const base = `/teams/${encodeURIComponent(teamId)}`;
  useDocumentTitle(team.data ? `${team.data.name} · Teams` : null);
  const back = (
    <Button asChild variant="secondary">
      <Link to="/teams">All teams</Link>
    </Button>
  );
  if (!TABS.some((t) => t.value === tab)) {
    return (
      <>
        <PageHeader title="Team" />
        <EmptyState title="There is no such team page" action={back} />
      </>
    );
  }
  if (!administers(me, teamId)) {
    return (
      <>
        <PageHeader title="No access" />
        <p className="text-muted">Only the team's admins and organization admins manage a team.</p>
      </>
    );
  }
  return (
    <QueryView query={team} loadingLabel="Loading the team" errorTitle="Could not load the team">
      {(data) => (
        <>
          <PageHeader title={data.name} description={`Team · ${data.slug}`} actions={back} />
          <Tabs value={tab} onValueChange={(value) => void navigate(`${base}/${value}`)}>
            <TabsList aria-label="Team sections">
              {TABS.map((t) => (
                <TabsTrigger key={t.value} value={t.value}>
                  {t.label}
                </TabsTrigger>
              ))}
            </TabsList>
            <TabsContent value="members" className="mt-6">
              <TeamMembers teamId={teamId} teamName={data.name} />
            </TabsContent>
            <TabsContent value="models" className="mt-6">
              <TeamModels teamId={teamId} teamName={data.name} />
            </TabsContent>
            <TabsContent value="mcp-access" className="mt-6">
              <TeamMcpAccess teamId={teamId} />
            </TabsContent>
            <TabsContent value={"settings" satisfies Tab} className="mt-6">
              <TeamSettings team={data} />
            </TabsContent>
          </Tabs>
        </>
      )}
    </QueryView>
  );
}
