/** Shapes of the model registry routes (`/api/v1/models`, deployments, health, test-connection). */

export const PROVIDERS = ["openai", "anthropic", "azure", "gemini", "vertex", "vllm", "ollama", "custom", "mock"] as const;
export type Provider = (typeof PROVIDERS)[number];

export const MODEL_TYPES = ["chat", "embedding", "reranking", "completion", "image", "audio_transcription", "tts"] as const;

export const STRATEGIES = ["round-robin", "least-latency", "weighted", "priority"] as const;

export interface DeploymentOut {
  id: string;
  model_id: string;
  name: string;
  provider: string;
  base_url: string;
  has_api_key: boolean;
  azure_deployment: string;
  azure_api_version: string;
  gcp_project: string;
  gcp_location: string;
  weight: number;
  priority: number;
  pii_filter: boolean | null;
  is_active: boolean;
  created_at: string;
  updated_at: string;
}

/** ModelOut: never the provider key (`has_api_key` says whether one is stored). */
export interface ModelOut {
  id: string;
  name: string;
  provider: string;
  type: string;
  base_url: string;
  has_api_key: boolean;
  max_context_tokens: number;
  input_price_per_1m: number;
  output_price_per_1m: number;
  azure_deployment: string;
  azure_api_version: string;
  gcp_project: string;
  gcp_location: string;
  aliases: string[];
  timeout: string;
  strategy: string;
  max_retries: number;
  fallback_model_name: string;
  pii_filter: boolean | null;
  is_active: boolean;
  /** "yaml" for models of voidllm.yaml (read-only here), "api" for the others. */
  source: string;
  created_by: string | null;
  created_at: string;
  updated_at: string;
  deployments: DeploymentOut[];
}

/** POST /models (PATCH takes the same fields, each optional; `api_key: ""` removes the stored key). */
export interface ModelWrite {
  name?: string;
  provider?: string;
  type?: string;
  base_url?: string;
  api_key?: string;
  max_context_tokens?: number;
  input_price_per_1m?: number;
  output_price_per_1m?: number;
  azure_deployment?: string;
  azure_api_version?: string;
  gcp_project?: string;
  gcp_location?: string;
  aliases?: string[];
  timeout?: string;
  strategy?: string;
  max_retries?: number;
  fallback_model_name?: string;
  pii_filter?: boolean | null;
}

/** POST/PATCH /models/{id}/deployments[/{deployment_id}]. */
export interface DeploymentWrite {
  name?: string;
  provider?: string;
  base_url?: string;
  api_key?: string;
  azure_deployment?: string;
  azure_api_version?: string;
  gcp_project?: string;
  gcp_location?: string;
  weight?: number;
  priority?: number;
}

export interface ConnectionResult {
  success: boolean;
  message: string;
}
