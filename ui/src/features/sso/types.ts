/** Shapes of the single sign-on endpoints (`/auth/providers`, `/orgs/{id}/sso`, `/settings/sso`). */

export const DEFAULT_ROLES = ["member", "team_admin"] as const;
export type DefaultRole = (typeof DEFAULT_ROLES)[number];

export const GROUP_SYNC_MODES = ["off", "additive", "exact"] as const;
export type GroupSync = (typeof GROUP_SYNC_MODES)[number];

/** GET/PUT /api/v1/orgs/{org_id}/sso: an organisation's provider (the secret is never sent back). */
export interface OrgSsoOut {
  org_id: string;
  enabled: boolean;
  issuer: string;
  client_id: string;
  client_secret_set: boolean;
  /** null: the gateway's own callback URL. */
  redirect_url: string | null;
  scopes: string[];
  allowed_domains: string[];
  auto_provision: boolean;
  default_role: DefaultRole;
  group_sync: GroupSync;
  group_claim: string;
  local_login: boolean;
  created_at: string;
  updated_at: string;
}

/** PUT body: the writable fields of {@link OrgSsoOut}; `client_secret` only when typed (required the first time). */
export type OrgSsoWrite = Omit<OrgSsoOut, "org_id" | "client_secret_set" | "created_at" | "updated_at"> & {
  client_secret?: string;
};

/** GET /api/v1/settings/sso (system admins): the global provider of voidllm.yaml, read-only. */
export interface GlobalSsoOut {
  configured: boolean;
  enabled: boolean;
  issuer: string;
  client_id: string;
  client_secret_set: boolean;
  redirect_url: string | null;
  scopes: string[];
  allowed_domains: string[];
  auto_provision: boolean;
  default_role: string;
  default_org_slug: string;
  group_sync: string;
  group_claim: string;
  /** The ID token signature algorithms accepted (absent from older gateways). */
  id_token_algorithms?: string[];
}

/** POST .../sso/test: discovery and JWKS fetched from the issuer. */
export interface SsoTestResult {
  ok: boolean;
  issuer: string;
  authorization_endpoint: string | null;
  jwks_keys: number;
  error: string | null;
}
