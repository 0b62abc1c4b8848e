import { useState } from "react";
import { createBrowserRouter, RouterProvider } from "react-router";
import { AppProviders, createQueryClient } from "./app/providers";
import { appRoutes } from "./app/routes";
import { routerBasename } from "./lib/base";

export function App() {
  const [client] = useState(createQueryClient);
  const [router] = useState(() => createBrowserRouter(appRoutes(), { basename: routerBasename() || "/" }));
  return (
    <AppProviders client={client}>
      <RouterProvider router={router} />
    </AppProviders>
  );
}
