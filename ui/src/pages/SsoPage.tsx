import { Link, useNavigate, useParams } from "react-router";
import { Button, Field, NativeSelect, PageHeader } from "../components/ui";
import { useOrg, useOrgs } from "../features/org/data";
import { GlobalSso } from "../features/sso/GlobalSso";
import { OrgSso } from "../features/sso/OrgSso";
import { useCurrentUser } from "../lib/auth";
import { isSystemAdmin } from "../lib/roles";

/**
 * Single sign-on: `/sso` for the session's own organization (org admins and up); system admins also see the
 * global provider and choose an organization, whose provider is then at `/orgs/:orgId/sso`.
 */
export default function SsoPage() {
  const me = useCurrentUser();
  const params = useParams();
  const orgId = params.orgId ?? me.org_id;
  const system = isSystemAdmin(me);
  const org = useOrg(orgId);
  return (
    <>
      <PageHeader
        title="Single sign-on"
        description="Sign-in with an OpenID Connect provider: users sign in there, and land here signed in."
        actions={
          params.orgId !== undefined ? (
            <Button asChild variant="secondary">
              <Link to="/orgs">All organizations</Link>
            </Button>
          ) : undefined
        }
      />
      <div className="flex flex-col gap-6">
        {system ? <GlobalSso /> : null}
        <OrgSso orgId={orgId} orgName={org.data?.name} picker={system ? <OrgPicker orgId={orgId} /> : null} />
      </div>
    </>
  );
}

/** System admins: which organization's provider the card shows. */
function OrgPicker({ orgId }: { orgId: string }) {
  const me = useCurrentUser();
  const orgs = useOrgs();
  const navigate = useNavigate();
  const options = (orgs.data?.items ?? []).map((o) => ({ value: o.id, label: o.name || o.slug }));
  if (!options.some((o) => o.value === orgId)) options.unshift({ value: orgId, label: orgId === me.org_id ? "Your organization" : orgId });
  return (
    <Field label="Organization" hint="The organization whose provider is shown below." className="max-w-sm">
      <NativeSelect
        value={orgId}
        onChange={(e) => void navigate(e.target.value === me.org_id ? "/sso" : `/orgs/${encodeURIComponent(e.target.value)}/sso`)}
        options={options}
      />
    </Field>
  );
}
