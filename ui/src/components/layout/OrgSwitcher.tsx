/**
 * System admins only: the header's choice of the organisation being viewed, and the banner that says which
 * one it is while it is not their own (see lib/viewedOrg.tsx for where the choice is kept).
 */
import { useOrg, useOrgs } from "../../features/org/data";
import { useCurrentUser } from "../../lib/auth";
import { isSystemAdmin } from "../../lib/roles";
import { useViewedOrg } from "../../lib/viewedOrg";
import { Button, NativeSelect } from "../ui";

/** The organisations to choose from; the one viewed is always among them (even before the list loads). */
export function OrgSwitcher() {
  const me = useCurrentUser();
  const { orgId, switchTo } = useViewedOrg();
  const orgs = useOrgs(isSystemAdmin(me));
  if (!isSystemAdmin(me)) return null;
  const options = (orgs.data?.items ?? []).map((o) => ({
    value: o.id,
    label: `${o.name || o.slug}${o.id === me.org_id ? " (yours)" : ""}${o.is_active ? "" : " (deactivated)"}`,
  }));
  if (!options.some((o) => o.value === orgId)) {
    options.unshift({ value: orgId, label: orgId === me.org_id ? "Your organization" : orgId });
  }
  return (
    <NativeSelect
      aria-label="Organization being viewed"
      title="Organization being viewed"
      value={orgId}
      onChange={(e) => switchTo(e.target.value)}
      options={options}
      className="h-8 max-w-40 sm:max-w-56"
    />
  );
}

/** Shown above every page while a system admin views another organisation than their own. */
export function ViewedOrgBanner() {
  const { orgId, isOwn, switchTo } = useViewedOrg();
  const org = useOrg(orgId, !isOwn);
  if (isOwn) return null;
  const name = org.data ? `${org.data.name} (${org.data.slug})` : orgId;
  return (
    <section
      aria-label="Organization being viewed"
      className="flex flex-wrap items-center gap-x-4 gap-y-2 border-b border-warning/60 bg-surface-2 px-4 py-2 text-sm"
    >
      <p>
        <span aria-hidden="true" className="mr-1 font-semibold text-warning">
          ▲
        </span>
        Viewing <strong>{name}</strong>, not your own organization. Every page and change here applies to it.
        {org.data && !org.data.is_active ? " It is deactivated." : ""}
      </p>
      <Button size="sm" variant="secondary" onClick={() => switchTo(null)}>
        Back to my organization
      </Button>
    </section>
  );
}
