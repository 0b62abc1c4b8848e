/** Queries of the Models page. */
import { useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import type { HealthList, UpstreamHealth } from "../../lib/types";
import { fetchAllPages } from "../keys/data";
import type { ModelOut } from "./types";

export const MODELS_KEY = ["models"] as const;

export function useModels() {
  return useQuery({
    queryKey: [...MODELS_KEY, "list"],
    queryFn: ({ signal }) => fetchAllPages<ModelOut>("models", signal),
  });
}

export function useModelHealth() {
  return useQuery({
    queryKey: [...MODELS_KEY, "health"],
    queryFn: ({ signal }) => api.get<HealthList>("models/health", { signal }),
  });
}

export const modelPath = (id: string) => `models/${encodeURIComponent(id)}`;

/** The upstreams of a model as the health view names them: the model itself, or `<model>/<deployment>`. */
export function upstreamsOf(model: ModelOut): { label: string; name: string }[] {
  if (model.deployments.length === 0) return [{ label: model.name, name: model.name }];
  return model.deployments.map((d) => ({ label: d.name, name: `${model.name}/${d.name}` }));
}

export function healthByName(list: UpstreamHealth[] | undefined): Map<string, UpstreamHealth> {
  return new Map((list ?? []).map((h) => [h.name, h]));
}

export const isConfigModel = (model: Pick<ModelOut, "source">) => model.source === "yaml";

export const CONFIG_REASON = "Defined in voidllm.yaml; change it there.";
