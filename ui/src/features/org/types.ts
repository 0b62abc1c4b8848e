/** Shapes of the organisation, membership, invite, user and access routes (voidllm/admin/*.py). */

/** OrgOut: GET/PATCH /orgs/{org_id}, items of GET /orgs. */
export interface OrgOut {
  id: string;
  name: string;
  slug: string;
  timezone: string;
  daily_token_limit: number;
  monthly_token_limit: number;
  requests_per_minute: number;
  requests_per_day: number;
  is_active: boolean;
  member_count: number;
  team_count: number;
  created_at: string;
  updated_at: string;
  deleted_at?: string | null;
}

/** POST /orgs. */
export interface OrgCreate {
  name: string;
  slug: string;
  daily_token_limit: number;
  monthly_token_limit: number;
  requests_per_minute: number;
  requests_per_day: number;
}

/** PATCH /orgs/{org_id}: org admins may change name and slug, system admins also the limits. */
export type OrgUpdate = Partial<OrgCreate>;

export type OrgRole = "member" | "org_admin";

/** MemberOut: items of GET /orgs/{org_id}/members. */
export interface MemberOut {
  id: string;
  org_id: string;
  user_id: string;
  role: string;
  email: string;
  display_name: string;
  created_at: string;
  updated_at: string;
}

export type InviteStatus = "pending" | "redeemed" | "declined" | "expired";

/** InviteOut: items of GET /orgs/{org_id}/invites. */
export interface InviteOut {
  id: string;
  org_id: string;
  email: string;
  role: string;
  token_hint: string;
  status: InviteStatus | string;
  expires_at: string;
  redeemed_at: string | null;
  created_at: string;
  created_by: string | null;
}

/** POST /orgs/{org_id}/invites: the token is in this answer only. */
export interface InviteCreated {
  id: string;
  org_id: string;
  email: string;
  role: string;
  token: string;
  token_hint: string;
  expires_at: string;
  created_at: string;
}

/** GET /invites/peek?token=. */
export interface InvitePeek {
  email: string;
  org_name: string;
  role: string;
  expires_at: string;
}

/** POST /invites/redeem. */
export interface Redeemed {
  id: string;
  email: string;
  display_name: string;
  org_id: string;
  role: string;
}

/** UserOut: GET /users items, POST/PATCH /users answers. */
export interface UserOut {
  id: string;
  email: string;
  display_name: string;
  is_system_admin: boolean;
  auth_provider: string;
  org_id: string | null;
  role: string | null;
  created_at: string;
  updated_at: string;
}

/** POST /users. */
export interface UserCreate {
  email: string;
  password: string;
  display_name: string;
  is_system_admin: boolean;
  org_id: string;
  role: OrgRole;
}

/** AliasOut: items of GET /orgs/{org_id}/model-aliases. */
export interface AliasOut {
  id: string;
  alias: string;
  model_name: string;
  scope_type: string;
  org_id: string;
  team_id: string | null;
  created_by: string | null;
  created_at: string;
}

/** GET /orgs/{org_id}/available-mcp-servers items: the global servers an organization can be granted. */
export interface AvailableMcpServer {
  id: string;
  name: string;
  alias: string;
}

/** GET/PUT /orgs/{org_id}/mcp-access: an empty list allows every server. */
export interface McpAccess {
  servers: string[];
}
