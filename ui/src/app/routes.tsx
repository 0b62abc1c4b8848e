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

// Pages load on first visit (their own chunks: charts and editors stay out of the first download).
const DashboardPage = lazy(() => import("../pages/DashboardPage"));
const PlaygroundPage = lazy(() => import("../pages/PlaygroundPage"));
const KeysPage = lazy(() => import("../pages/KeysPage"));
const ModelsPage = lazy(() => import("../pages/ModelsPage"));
const UsagePage = lazy(() => import("../pages/UsagePage"));
const ProfilePage = lazy(() => import("../pages/ProfilePage"));

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
            { path: "usage/*", element: <Page><UsagePage /></Page> },
            { path: "profile", element: <Page><ProfilePage /></Page> },
            { path: "*", element: <NotFoundPage /> },
          ],
        },
      ],
    },
  ];
}
