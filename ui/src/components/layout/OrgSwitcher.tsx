/**
 * System admins only: a bar under the header with the choice of the organisation being viewed, which also
 * says, in a warning style, which organisation it is while it is not their own (lib/viewedOrg.tsx keeps the
 * choice). A bar of its own rather than a header control: it has the page's full width on a phone too.
 */
import { useOrg, useOrgs } from "../../features/org/data";
import { useCurrentUser } from "../../lib/auth";
import { isSystemAdmin } from "../../lib/roles";
import { useViewedOrg } from "../../lib/viewedOrg";
import { Button, cn, NativeSelect } from "../ui";

export function OrgBar() {
  const me = useCurrentUser();
  return isSystemAdmin(me) ? <SystemOrgBar /> : null;
}

function SystemOrgBar() {
  const me = useCurrentUser();
  const { orgId, isOwn, switchTo } = useViewedOrg();
  const orgs = useOrgs();
  const org = useOrg(orgId, !isOwn);
  const options = (orgs.data?.items ?? []).map((o) => ({
    value: o.id,
    label: `${o.name || o.slug}${o.id === me.org_id ? " (yours)" : ""}${o.is_active ? "" : " (deactivated)"}`,
  }));
  // The one viewed is always among the choices, even before the list is loaded.
  if (!options.some((o) => o.value === orgId)) {
    options.unshift({ value: orgId, label: orgId === me.org_id ? "Your organization" : orgId });
  }
  const name = org.data ? `${org.data.name} (${org.data.slug})` : orgId;
  return (
    <div
      className={cn(
        "flex flex-wrap items-center gap-x-4 gap-y-2 border-b px-3 py-2 text-sm md:px-4",
        isOwn ? "border-border bg-surface" : "border-warning bg-surface-2",
        // Kept in sight while scrolling where there is room for it (not on a phone, where it takes several lines).
        "md:sticky md:top-14 md:z-20",
      )}
    >
      <div className="flex w-full min-w-0 items-center gap-2 sm:w-auto">
        <span aria-hidden="true" className="text-muted">
          Organization
        </span>
        <NativeSelect
          aria-label="Organization being viewed"
          value={orgId}
          onChange={(e) => switchTo(e.target.value)}
          options={options}
          className="h-8 min-w-0 flex-1 sm:w-auto sm:max-w-64 sm:flex-none"
        />
      </div>
      {isOwn ? null : (
        <section aria-label="Organization being viewed" className="flex flex-wrap items-center gap-x-4 gap-y-2">
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
      )}
    </div>
  );
}
