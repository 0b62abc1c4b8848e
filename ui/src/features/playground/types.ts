/** Shapes the playground reads: GET /api/v1/me/available-models and the OpenAI API behind the tunnel. */

/** One model the caller may use (`type`: chat, completion, embedding, ...). */
export interface ModelBrief {
  name: string;
  type: string;
}

/** GET /api/v1/me/available-models. */
export interface AvailableModels {
  models: ModelBrief[];
}

/** OpenAI `usage` of an answer. */
export interface TokenUsage {
  prompt_tokens: number;
  completion_tokens?: number;
  total_tokens: number;
}

/** How an answer went: measured in the browser (latency) and reported by the model (usage). */
export interface AnswerStats {
  /** From sending the request to the last byte. */
  latencyMs: number;
  /** From sending the request to the first token (streams only). */
  firstTokenMs: number | null;
  usage: TokenUsage | null;
  /** The model that answered, as the response names it. */
  model: string | null;
  finishReason: string | null;
}

/** The knobs shared by the chat and completion tabs (kept in page memory only). */
export interface GenerationSettings {
  model: string;
  system: string;
  temperature: string;
  maxTokens: string;
  stream: boolean;
}

export const DEFAULT_SETTINGS: GenerationSettings = {
  model: "",
  system: "",
  temperature: "",
  maxTokens: "",
  stream: true,
};
