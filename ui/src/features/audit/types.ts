/** Audit log shapes (GET /api/v1/audit-logs; voidllm/admin/audit.py). */

export type ActorType = "user" | "service_account" | "system" | string;

/** One entry; `description` is the request body as JSON text, secrets already redacted by the gateway. */
export interface AuditLogEntry {
  id: string;
  timestamp: string;
  request_id: string | null;
  org_id: string | null;
  actor_id: string | null;
  actor_type: ActorType;
  actor_key_id: string | null;
  action: string;
  resource_type: string;
  resource_id: string | null;
  description: string;
  ip_address: string | null;
  status_code: number;
}
