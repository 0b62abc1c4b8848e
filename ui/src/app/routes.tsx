import type { RouteObject } from "react-router";
import { Outlet } from "react-router";
import type { QueryClient } from "@tanstack/react-query";
import { AppShell } from "../components/layout/AppShell";
import { AuthGuard, RequireRole } from "./AuthGuard";
import { UnauthorizedRedirect } from "./providers";
import LoginPage from "../pages/LoginPage";
import DashboardPage from "../pages/DashboardPage";
import PlaygroundPage from "../pages/PlaygroundPage";
import KeysPage from "../pages/KeysPage";
import ModelsPage from "../pages/ModelsPage";
import UsagePage from "../pages/UsagePage";
import ProfilePage from "../pages/ProfilePage";
import NotFoundPage from "../pages/NotFoundPage";

/** Every route of the app (also used by tests with a memory router). */
export function appRoutes(client: QueryClient): RouteObject[] {
  return [
    {
      element: (
        <UnauthorizedRedirect client={client}>
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
            { index: true, element: <DashboardPage /> },
            { path: "playground", element: <PlaygroundPage /> },
            { path: "keys/*", element: <KeysPage /> },
            {
              path: "models/*",
              element: (
                <RequireRole role="system_admin">
                  <ModelsPage />
                </RequireRole>
              ),
            },
            { path: "usage/*", element: <UsagePage /> },
            { path: "profile", element: <ProfilePage /> },
            { path: "*", element: <NotFoundPage /> },
          ],
        },
      ],
    },
  ];
}
