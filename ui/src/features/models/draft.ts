/** The model form's state, and what it sends: full bodies on create, only the changes on edit. */
import { formatNumber } from "../../lib/format";
import type { DeploymentOut, DeploymentWrite, ModelOut, ModelWrite } from "./types";

export interface DeploymentDraft {
  /** Local identity of the row (React key, error target). */
  key: string;
  /** Server id when the deployment exists. */
  id?: string;
  name: string;
  provider: string;
  base_url: string;
  /** Write-only: "" keeps the stored key. */
  api_key: string;
  has_api_key: boolean;
  azure_deployment: string;
  azure_api_version: string;
  gcp_project: string;
  gcp_location: string;
  weight: string;
  priority: string;
}

export interface ModelDraft {
  name: string;
  provider: string;
  type: string;
  base_url: string;
  /** Write-only: "" keeps the stored key (unless remove_api_key). */
  api_key: string;
  has_api_key: boolean;
  remove_api_key: boolean;
  aliases: string;
  timeout: string;
  strategy: string;
  max_retries: string;
  max_context_tokens: string;
  fallback_model_name: string;
  input_price_per_1m: string;
  output_price_per_1m: string;
  azure_deployment: string;
  azure_api_version: string;
  gcp_project: string;
  gcp_location: string;
  /** "" = the gateway's default, "on", "off". */
  pii_filter: string;
  deployments: DeploymentDraft[];
}

let counter = 0;
export const newRowKey = () => `row${++counter}`;

export function emptyDeployment(provider = "openai"): DeploymentDraft {
  return {
    key: newRowKey(),
    name: "",
    provider,
    base_url: "",
    api_key: "",
    has_api_key: false,
    azure_deployment: "",
    azure_api_version: "",
    gcp_project: "",
    gcp_location: "",
    weight: "1",
    priority: "0",
  };
}

export function deploymentDraft(d: DeploymentOut): DeploymentDraft {
  return {
    key: newRowKey(),
    id: d.id,
    name: d.name,
    provider: d.provider,
    base_url: d.base_url,
    api_key: "",
    has_api_key: d.has_api_key,
    azure_deployment: d.azure_deployment,
    azure_api_version: d.azure_api_version,
    gcp_project: d.gcp_project,
    gcp_location: d.gcp_location,
    weight: String(d.weight),
    priority: String(d.priority),
  };
}

const piiText = (v: boolean | null) => (v === null ? "" : v ? "on" : "off");

export function modelDraft(model: ModelOut | null): ModelDraft {
  if (!model) {
    return {
      name: "",
      provider: "openai",
      type: "chat",
      base_url: "",
      api_key: "",
      has_api_key: false,
      remove_api_key: false,
      aliases: "",
      timeout: "",
      strategy: "",
      max_retries: "0",
      max_context_tokens: "0",
      fallback_model_name: "",
      input_price_per_1m: "0",
      output_price_per_1m: "0",
      azure_deployment: "",
      azure_api_version: "",
      gcp_project: "",
      gcp_location: "",
      pii_filter: "",
      deployments: [],
    };
  }
  return {
    name: model.name,
    provider: model.provider,
    type: model.type,
    base_url: model.base_url,
    api_key: "",
    has_api_key: model.has_api_key,
    remove_api_key: false,
    aliases: model.aliases.join(", "),
    timeout: model.timeout,
    strategy: model.strategy,
    max_retries: String(model.max_retries),
    max_context_tokens: String(model.max_context_tokens),
    fallback_model_name: model.fallback_model_name,
    input_price_per_1m: String(model.input_price_per_1m),
    output_price_per_1m: String(model.output_price_per_1m),
    azure_deployment: model.azure_deployment,
    azure_api_version: model.azure_api_version,
    gcp_project: model.gcp_project,
    gcp_location: model.gcp_location,
    pii_filter: piiText(model.pii_filter),
    deployments: model.deployments.map(deploymentDraft),
  };
}

export type Errors = Partial<Record<string, string>>;

export const splitAliases = (text: string) =>
  text
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);

function whole(text: string, field: string, max: number, errors: Errors): number {
  const n = text.trim() === "" ? 0 : Number(text);
  if (!Number.isInteger(n) || n < 0 || n > max) errors[field] = `Enter a whole number from 0 to ${formatNumber(max)}.`;
  return n;
}

function price(text: string, field: string, errors: Errors): number {
  const n = text.trim() === "" ? 0 : Number(text);
  if (!Number.isFinite(n) || n < 0 || n > 1_000_000) errors[field] = `Enter a price from 0 to ${formatNumber(1_000_000)}.`;
  return n;
}

/** The full model body (create) from the draft, with the errors of fields that cannot be sent. */
export function modelBody(draft: ModelDraft): { body: ModelWrite; errors: Errors } {
  const errors: Errors = {};
  if (!draft.name.trim()) errors.name = "Enter a name.";
  if (!draft.base_url.trim() && draft.provider !== "mock") errors.base_url = "Enter the provider's base URL.";
  const body: ModelWrite = {
    name: draft.name.trim(),
    provider: draft.provider,
    type: draft.type,
    base_url: draft.base_url.trim(),
    max_context_tokens: whole(draft.max_context_tokens, "max_context_tokens", 100_000_000, errors),
    input_price_per_1m: price(draft.input_price_per_1m, "input_price_per_1m", errors),
    output_price_per_1m: price(draft.output_price_per_1m, "output_price_per_1m", errors),
    aliases: splitAliases(draft.aliases),
    timeout: draft.timeout.trim(),
    strategy: draft.strategy,
    max_retries: whole(draft.max_retries, "max_retries", 100, errors),
    fallback_model_name: draft.fallback_model_name,
    azure_deployment: draft.provider === "azure" ? draft.azure_deployment.trim() : "",
    azure_api_version: draft.provider === "azure" ? draft.azure_api_version.trim() : "",
    gcp_project: draft.provider === "vertex" ? draft.gcp_project.trim() : "",
    gcp_location: draft.provider === "vertex" ? draft.gcp_location.trim() : "",
  };
  if (draft.pii_filter) body.pii_filter = draft.pii_filter === "on";
  if (draft.api_key) body.api_key = draft.api_key;
  return { body, errors };
}

/** Only the fields that differ from `original` (the write-only key: sent when typed, "" when removed). */
export function modelChanges(draft: ModelDraft, original: ModelOut): { body: ModelWrite; errors: Errors } {
  const { body: full, errors } = modelBody(draft);
  const body: ModelWrite = {};
  const was = modelBody(modelDraft(original)).body;
  for (const field of Object.keys(full) as (keyof ModelWrite)[]) {
    if (field === "api_key") continue;
    if (JSON.stringify(full[field]) !== JSON.stringify(was[field])) (body as Record<string, unknown>)[field] = full[field];
  }
  if (!draft.pii_filter && original.pii_filter !== null) body.pii_filter = null;
  if (draft.api_key) body.api_key = draft.api_key;
  else if (draft.remove_api_key && original.has_api_key) body.api_key = "";
  return { body, errors };
}

export function deploymentBody(d: DeploymentDraft, errors: Errors): DeploymentWrite {
  if (!d.name.trim()) errors.name = "Enter a name.";
  if (!d.base_url.trim() && d.provider !== "mock") errors.base_url = "Enter the base URL.";
  const body: DeploymentWrite = {
    name: d.name.trim(),
    provider: d.provider,
    base_url: d.base_url.trim(),
    azure_deployment: d.provider === "azure" ? d.azure_deployment.trim() : "",
    azure_api_version: d.provider === "azure" ? d.azure_api_version.trim() : "",
    gcp_project: d.provider === "vertex" ? d.gcp_project.trim() : "",
    gcp_location: d.provider === "vertex" ? d.gcp_location.trim() : "",
    weight: whole(d.weight, "weight", 10_000, errors),
    priority: whole(d.priority, "priority", 1_000, errors),
  };
  if (d.api_key) body.api_key = d.api_key;
  return body;
}

export function deploymentChanges(d: DeploymentDraft, original: DeploymentOut, errors: Errors): DeploymentWrite {
  const full = deploymentBody(d, errors);
  const was = deploymentBody(deploymentDraft(original), {});
  const body: DeploymentWrite = {};
  for (const field of Object.keys(full) as (keyof DeploymentWrite)[]) {
    if (field === "api_key") continue;
    if (full[field] !== was[field]) (body as Record<string, unknown>)[field] = full[field];
  }
  if (d.api_key) body.api_key = d.api_key;
  return body;
}
