/**
 * The running gateway's version, from `GET /health` (unauthenticated, at the mount root beside `api/v1`):
 * the only answer that carries it. Read with the app's URL base so it works behind a sub-path proxy.
 */
import { useQuery } from "@tanstack/react-query";
import { errorFromResponse } from "../../lib/api";
import { appUrl } from "../../lib/base";

/** GET /health. */
export interface GatewayHealth {
  status: string;
  version: string;
  uptime_seconds: number;
}

async function fetchHealth(signal: AbortSignal): Promise<GatewayHealth> {
  const response = await fetch(appUrl("health"), { headers: { Accept: "application/json" }, credentials: "same-origin", signal });
  if (!response.ok) throw await errorFromResponse(response);
  return (await response.json()) as GatewayHealth;
}

export function useGatewayHealth() {
  return useQuery({ queryKey: ["health", "gateway"], queryFn: ({ signal }) => fetchHealth(signal) });
}
