import { Link, Navigate, useLocation, useNavigate, useParams } from "react-router";
import { Button, EmptyState, PageHeader, Tabs, TabsContent, TabsList, TabsTrigger } from "../components/ui";
import { OrgMcpAccess, OrgModels } from "../features/org/OrgAccess";
import { OrgMembers } from "../features/org/OrgMembers";
import { OrgSettings } from "../features/org/OrgSettings";
import { OrgTeams } from "../features/org/OrgTeams";
import { orgBase, useOrg } from "../features/org/data";
import { useCurrentUser } from "../lib/auth";
import { useOrgId } from "../lib/viewedOrg";

const TABS = [
  { value: "settings", label: "Settings" },
  { value: "users", label: "Members" },
  { value: "teams", label: "Teams" },
  { value: "models", label: "Models" },
  { value: "mcp-access", label: "MCP access" },
] as const;
type Tab = (typeof TABS)[number]["value"];

/**
 * Organization: `/org/{settings,users,models,mcp-access}` for the organization being viewed (the session's
 * own, whose teams are the Teams page; a system admin may view another, lib/viewedOrg.tsx), and under
 * `/orgs/:orgId/...` the same tabs and the organization's teams for a system admin viewing any one (opening
 * such a path makes it the organization being viewed).
 */
export default function OrgPage() {
  const me = useCurrentUser();
  const params = useParams();
  const navigate = useNavigate();
  const location = useLocation();
  const viewed = useOrgId();
  const orgId = params.orgId ?? viewed;
  const base = orgBase(params.orgId);
  const sub = (params["*"] ?? "").replace(/\/+$/, "");
  const org = useOrg(orgId);
  const viewingOther = orgId !== me.org_id;
  const title = viewingOther ? `Organization: ${org.data?.name ?? "…"}` : "Organization";
  const tabs = TABS.filter((t) => t.value !== "teams" || params.orgId !== undefined || viewingOther);
  if (sub === "") return <Navigate to={`${base}/settings${location.search}`} replace />;
  // `/orgs/:orgId/members` (reference section 12) is the Members tab.
  if (sub === "members") return <Navigate to={`${base}/users${location.search}`} replace />;
  const header = (
    <PageHeader
      title={title}
      description={viewingOther ? "You are viewing another organization as a system admin." : "Your organization's settings, members and access."}
      actions={
        viewingOther ? (
          <Button asChild variant="secondary">
            <Link to="/orgs">All organizations</Link>
          </Button>
        ) : undefined
      }
    />
  );
  if (!tabs.some((t) => t.value === sub)) {
    return (
      <>
        {header}
        <EmptyState
          title="There is no such organization page"
          action={
            <Button asChild variant="secondary">
              <Link to={`${base}/settings`}>Organization settings</Link>
            </Button>
          }
        />
      </>
    );
  }
  const tab = sub as Tab;
  return (
    <>
      {header}
      <Tabs value={tab} onValueChange={(value) => void navigate(`${base}/${value}`)}>
        <TabsList aria-label="Organization sections">
          {tabs.map((t) => (
            <TabsTrigger key={t.value} value={t.value}>
              {t.label}
            </TabsTrigger>
          ))}
        </TabsList>
        <TabsContent value="settings" className="mt-6">
          {tab === "settings" ? <OrgSettings orgId={orgId} /> : null}
        </TabsContent>
        <TabsContent value="users" className="mt-6">
          {tab === "users" ? <OrgMembers orgId={orgId} /> : null}
        </TabsContent>
        <TabsContent value="teams" className="mt-6">
          {tab === "teams" ? <OrgTeams orgId={orgId} /> : null}
        </TabsContent>
        <TabsContent value="models" className="mt-6">
          {tab === "models" ? <OrgModels orgId={orgId} /> : null}
        </TabsContent>
        <TabsContent value="mcp-access" className="mt-6">
          {tab === "mcp-access" ? <OrgMcpAccess orgId={orgId} /> : null}
        </TabsContent>
      </Tabs>
    </>
  );
}
