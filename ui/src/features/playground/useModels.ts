import { useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import type { AvailableModels } from "./types";

/** The models the signed-in user's session may use, with their type (GET /api/v1/me/available-models). */
export function useAvailableModels() {
  return useQuery({
    queryKey: ["playground", "models"],
    queryFn: ({ signal }) => api.get<AvailableModels>("me/available-models", { signal }),
  });
}
