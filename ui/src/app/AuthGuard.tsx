import type { ReactNode } from "react";
import { Navigate, useLocation } from "react-router";
import { isApiError } from "../lib/api";
import { MeProvider, useCurrentUser, useMe } from "../lib/auth";
import { loginPath } from "../lib/base";
import { hasRole } from "../lib/roles";
import { ViewedOrgProvider } from "../lib/viewedOrg";
import type { Role } from "../lib/types";
import { ErrorState, LoadingState, PageHeader } from "../components/ui";

/**
 * Lets a signed-in user through (providing `useCurrentUser()` below); a signed-out one (401 from
 * GET /api/v1/me) goes to `/login?next=<where they wanted to go>`. Also holds the organisation being viewed
 * (lib/viewedOrg.tsx), which so ends with the signed-in shell.
 */
export function AuthGuard({ children }: { children: ReactNode }) {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <LoadingState label="Loading your account" className="min-h-screen" />;
  if (me.isError) {
    if (isApiError(me.error) && me.error.status === 401) {
      return <Navigate to={loginPath(`${location.pathname}${location.search}`)} replace />;
    }
    return (
      <div className="p-6">
        <ErrorState error={me.error} title="Could not load your account" onRetry={() => void me.refetch()} />
      </div>
    );
  }
  return (
    <MeProvider me={me.data}>
      <ViewedOrgProvider>{children}</ViewedOrgProvider>
    </MeProvider>
  );
}

/** A page only some roles may use: others see a plain "no access" message (they have no link to it). */
export function RequireRole({ role, children }: { role: Role; children: ReactNode }) {
  const me = useCurrentUser();
  if (hasRole(me, role)) return <>{children}</>;
  return (
    <>
      <PageHeader title="No access" />
      <p className="text-muted">Your role does not allow this page.</p>
    </>
  );
}
