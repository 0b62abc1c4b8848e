import type { ReactNode } from "react";
import { useCurrentUser } from "../../lib/auth";
import { PageHeader } from "../../components/ui";
import { canAdministerTeams } from "./access";

/** Teams and service accounts are for team admins and above; others see a plain "no access" page. */
export function RequireTeamAdmin({ children }: { children: ReactNode }) {
  const me = useCurrentUser();
  if (canAdministerTeams(me)) return <>{children}</>;
  return (
    <>
      <PageHeader title="No access" />
      <p className="text-muted">Your role does not allow this page: it is for team admins and organization admins.</p>
    </>
  );
}
