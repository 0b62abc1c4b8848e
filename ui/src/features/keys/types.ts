/** Shapes of the API-key routes (`/api/v1/orgs/{org_id}/keys`, teams, service accounts, model access). */

export type KeyType = "user_key" | "team_key" | "sa_key";

/** KeyOut: a key as the API shows it (never the key itself). */
export interface KeyOut {
  id: string;
  name: string;
  key_type: string;
  key_hint: string;
  org_id: string;
  team_id: string | null;
  user_id: string | null;
  service_account_id: string | null;
  daily_token_limit: number;
  monthly_token_limit: number;
  requests_per_minute: number;
  requests_per_day: number;
  expires_at: string | null;
  last_used_at: string | null;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

/** KeyCreated: a new key with its plaintext `key`, the only time it is ever sent. */
export interface KeyCreated extends KeyOut {
  key: string;
}

/** POST /orgs/{org_id}/keys. */
export interface KeyCreate {
  name: string;
  key_type: KeyType;
  team_id?: string | null;
  user_id?: string | null;
  service_account_id?: string | null;
  daily_token_limit: number;
  monthly_token_limit: number;
  requests_per_minute: number;
  requests_per_day: number;
  expires_at?: string | null;
}

/** PATCH /orgs/{org_id}/keys/{key_id}: absent fields stay as they are; an expiry can be moved, not removed. */
export interface KeyUpdate {
  name?: string;
  daily_token_limit?: number;
  monthly_token_limit?: number;
  requests_per_minute?: number;
  requests_per_day?: number;
  expires_at?: string;
}

/** POST /orgs/{org_id}/keys/{key_id}/rotate. */
export interface KeyRotation {
  new_key: KeyCreated;
  old_key: KeyOut;
}

export interface TeamOut {
  id: string;
  org_id: string;
  name: string;
  slug: string;
}

export interface ServiceAccountOut {
  id: string;
  name: string;
  org_id: string;
  team_id: string | null;
  key_count: number;
}

/** GET/PUT .../model-access: an empty list allows every model. */
export interface ModelAccess {
  models: string[];
}

/** GET /me/available-models. */
export interface AvailableModels {
  models: { name: string; type: string }[];
}

export type LimitField = "requests_per_minute" | "requests_per_day" | "daily_token_limit" | "monthly_token_limit";

export const LIMIT_FIELDS: { field: LimitField; label: string }[] = [
  { field: "requests_per_minute", label: "Requests per minute" },
  { field: "requests_per_day", label: "Requests per day" },
  { field: "daily_token_limit", label: "Daily token limit" },
  { field: "monthly_token_limit", label: "Monthly token limit" },
];
