import { lazy, Suspense, type ReactNode } from "react";
import type { RouteObject } from "react-router";
import { Outlet } from "react-router";
import { AppShell } from "../components/layout/AppShell";
import { AuthGuard, RequireRole } from "./AuthGuard";
import { UnauthorizedRedirect } from "./providers";
import { RootSlash } from "./RootSlash";
import LoginPage from "../pages/LoginPage";
import NotFoundPage from "../pages/NotFoundPage";
import { LoadingState } from "../components/ui";
import { RequireTeamAdmin } from "../features/teams/guard";

// Pages load on first visit (their own chunks: charts and editors stay out of the first download).
const DashboardPage = lazy(() => import("../pages/DashboardPage"));
const PlaygroundPage = lazy(() => import("../pages/PlaygroundPage"));
const KeysPage = lazy(() => import("../pages/KeysPage"));
const ModelsPage = lazy(() => import("../pages/ModelsPage"));
const UsagePage = lazy(() => import("../pages/UsagePage"));
const ProfilePage = lazy(() => import("../pages/ProfilePage"));
const OrgPage = lazy(() => import("../pages/OrgPage"));
const OrgsPage = lazy(() => import("../pages/OrgsPage"));
const UsersPage = lazy(() => import("../pages/UsersPage"));
const InvitePage = lazy(() => import("../pages/InvitePage"));
const McpServersPage = lazy(() => import("../pages/McpServersPage"));
const AuditLogPage = lazy(() => import("../pages/AuditLogPage"));
const CostReportsPage = lazy(() => import("../pages/CostReportsPage"));
const TeamsPage = lazy(() => import("../pages/TeamsPage"));
const ServiceAccountsPage = lazy(() => import("../pages/ServiceAccountsPage"));
const SsoPage = lazy(() => import("../pages/SsoPage"));
const LicensePage = lazy(() => import("../pages/LicensePage"));

function Page({ children }: { children: ReactNode }) {
  return <Suspense fallback={<LoadingState label="Loading page" />}>{children}</Suspense>;
}

/** Every route of the app (also used by tests with a memory router). */
export function appRoutes(): RouteObject[] {
  return [
    {
      element: (
        <UnauthorizedRedirect>
          <RootSlash />
          <Outlet />
        </UnauthorizedRedirect>
      ),
      children: [
        { path: "/login", element: <LoginPage /> },
        { path: "/invite/:token", element: <Page><InvitePage /></Page> },
        {
          element: (
            <AuthGuard>
              <AppShell />
            </AuthGuard>
          ),
          children: [
            { index: true, element: <Page><DashboardPage /></Page> },
            { path: "playground", element: <Page><PlaygroundPage /></Page> },
            { path: "keys/*", element: <Page><KeysPage /></Page> },
            {
              path: "models/*",
              element: (
                <RequireRole role="system_admin">
                  <Page>
                    <ModelsPage />
                  </Page>
                </RequireRole>
              ),
            },
            {
              path: "teams/*",
              element: (
                <RequireTeamAdmin>
                  <Page>
                    <TeamsPage />
                  </Page>
                </RequireTeamAdmin>
              ),
            },
            {
              path: "service-accounts",
              element: (
                <RequireTeamAdmin>
                  <Page>
                    <ServiceAccountsPage />
                  </Page>
                </RequireTeamAdmin>
              ),
            },
            { path: "usage/*", element: <Page><UsagePage /></Page> },
            { path: "profile", element: <Page><ProfilePage /></Page> },
            ...[
              { path: "org/*", role: "org_admin" as const, page: <OrgPage /> },
              { path: "orgs", role: "system_admin" as const, page: <OrgsPage /> },
              { path: "orgs/:orgId/*", role: "system_admin" as const, page: <OrgPage /> },
              { path: "users", role: "system_admin" as const, page: <UsersPage /> },
              { path: "license", role: "system_admin" as const, page: <LicensePage /> },
              { path: "sso", role: "org_admin" as const, page: <SsoPage /> },
              { path: "orgs/:orgId/sso", role: "system_admin" as const, page: <SsoPage /> },
            ].map(({ path, role, page }) => ({
              path,
              element: (
                <RequireRole role={role}>
                  <Page>{page}</Page>
                </RequireRole>
              ),
            })),
            { path: "mcp-servers/*", element: <Page><McpServersPage /></Page> },
            {
              path: "audit-log",
              element: (
                <RequireRole role="org_admin">
                  <Page>
                    <AuditLogPage />
                  </Page>
                </RequireRole>
              ),
            },
            {
              path: "cost-reports",
              element: (
                <RequireRole role="org_admin">
                  <Page>
                    <CostReportsPage />
                  </Page>
                </RequireRole>
              ),
            },
            { path: "*", element: <NotFoundPage /> },
          ],
        },
      ],
    },
  ];
}
