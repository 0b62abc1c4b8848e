import { Link, useParams } from "react-router";
import { Button, Field, NativeSelect, PageHeader } from "../components/ui";
import { useOrg, useOrgs } from "../features/org/data";
import { GlobalSso } from "../features/sso/GlobalSso";
import { OrgSso } from "../features/sso/OrgSso";
import { useCurrentUser } from "../lib/auth";
import { isSystemAdmin } from "../lib/roles";
import { useViewedOrg } from "../lib/viewedOrg";

/**
 * Single sign-on: `/sso` for the organization being viewed (the session's own for org admins); system admins
 * also see the global provider and choose an organization (which switches the organization being viewed,
 * lib/viewedOrg.tsx), whose provider is also at `/orgs/:orgId/sso`.
 */
export default function SsoPage() {
  const me = useCurrentUser();
  const params = useParams();
  const viewed = useViewedOrg();
  const orgId = params.orgId ?? viewed.orgId;
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
  const { switchTo } = useViewedOrg();
  const options = (orgs.data?.items ?? []).map((o) => ({ value: o.id, label: o.name || o.slug }));
  if (!options.some((o) => o.value === orgId)) options.unshift({ value: orgId, label: orgId === me.org_id ? "Your organization" : orgId });
  return (
    <Field label="Organization" hint="The organization whose provider is shown below." className="max-w-sm">
      <NativeSelect
        value={orgId}
        onChange={(e) => {
          const id = e.target.value;
          switchTo(id, id === me.org_id ? "/sso" : `/orgs/${encodeURIComponent(id)}/sso`);
        }}
        options={options}
      />
    </Field>
  );
}
