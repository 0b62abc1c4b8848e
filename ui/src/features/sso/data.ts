/** Queries, paths, texts and list parsing of the single sign-on pages. */
import { useQuery } from "@tanstack/react-query";
import { api, isApiError } from "../../lib/api";
import { appUrl } from "../../lib/base";
import { orgKey, orgPath } from "../org/data";
import type { GlobalSsoOut, GroupSync, OrgSsoOut } from "./types";

/** The callback URL to register at the provider (the default redirect URL). */
export function callbackUrl(): string {
  return appUrl("api/v1/auth/oidc/callback").href;
}

export const ssoPath = (orgId: string) => `${orgPath(orgId)}/sso`;
export const ssoKey = (orgId: string) => orgKey(orgId, "sso");
export const GLOBAL_SSO_KEY = ["settings", "sso"] as const;

/** The organisation's provider; `null` when none is configured (404). */
export function useOrgSso(orgId: string) {
  return useQuery({
    queryKey: ssoKey(orgId),
    queryFn: async ({ signal }) => {
      try {
        return await api.get<OrgSsoOut>(ssoPath(orgId), { signal });
      } catch (error) {
        if (isApiError(error) && error.status === 404) return null;
        throw error;
      }
    },
  });
}

export function useGlobalSso() {
  return useQuery({
    queryKey: GLOBAL_SSO_KEY,
    queryFn: ({ signal }) => api.get<GlobalSsoOut>("settings/sso", { signal }),
  });
}

export const ROLE_OPTIONS = [
  { value: "member", label: "Member" },
  { value: "team_admin", label: "Team admin" },
];

export const GROUP_SYNC_OPTIONS: { value: GroupSync; label: string }[] = [
  { value: "off", label: "Off: groups are ignored" },
  { value: "additive", label: "Additive: join the groups' teams, never leave" },
  { value: "exact", label: "Exact: also leave the teams of groups no longer claimed" },
];

/** A comma-, space- or newline-separated list, without empty items and duplicates. */
export function splitList(text: string): string[] {
  const items = text.split(/[\s,]+/).filter(Boolean);
  return [...new Set(items)];
}

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const DOMAIN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;

/** The scope tokens (RFC 6749 3.3) of `text`, or the error for the field. */
export function parseScopes(text: string): { scopes: string[]; error?: string } {
  const scopes = splitList(text);
  const bad = scopes.find((s) => !SCOPE_TOKEN.test(s));
  if (bad !== undefined) return { scopes, error: `“${bad}” is not a scope (no quotes or backslashes).` };
  if (!scopes.includes("openid")) return { scopes, error: "The scopes must include openid." };
  return { scopes };
}

/** Lowercased email domains of `text` (a leading `@` is dropped), or the error for the field. */
export function parseDomains(text: string): { domains: string[]; error?: string } {
  const domains = splitList(text.toLowerCase()).map((d) => d.replace(/^@/, ""));
  const bad = domains.find((d) => !DOMAIN.test(d));
  if (bad !== undefined) return { domains, error: `“${bad}” is not a domain name, e.g. example.com.` };
  return { domains };
}
