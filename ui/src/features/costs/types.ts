/** Cost report shapes (GET /api/v1/orgs/{org_id}/usage/cost-report; voidllm/admin/export.py). */

export interface CostTotals {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: number;
}

export interface ModelCost extends CostTotals {
  model_name: string;
}

/** One UTC calendar day (`YYYY-MM-DD`). */
export interface DayCost {
  day: string;
  requests: number;
  total_tokens: number;
  cost: number;
}

/** A key or user by cost; `name` is the key's name or the user's email ("" when unknown). */
export interface Spender {
  id: string;
  name: string;
  requests: number;
  total_tokens: number;
  cost: number;
}

export interface CostReport {
  org_id: string;
  from: string;
  to: string;
  totals: CostTotals;
  by_model: ModelCost[];
  by_day: DayCost[];
  top_keys: Spender[];
  top_users: Spender[];
}
