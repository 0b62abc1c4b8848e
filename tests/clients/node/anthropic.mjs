// The `@anthropic-ai/sdk` SDK against the gateway's /v1/messages: node anthropic.mjs CASE...
import Anthropic from "@anthropic-ai/sdk";

import { key, refusal, run, url } from "./run.mjs";

const client = new Anthropic({ apiKey: key, baseURL: url, maxRetries: 0, timeout: 20_000 });
const request = { model: "gpt-test", max_tokens: 64, messages: [{ role: "user", content: "hi" }] };

await run({
  async message() {
    const message = await client.messages.create({ ...request, system: "be brief" });
    return {
      type: message.type,
      role: message.role,
      content: message.content,
      stop_reason: message.stop_reason,
      usage: { input_tokens: message.usage.input_tokens, output_tokens: message.usage.output_tokens },
    };
  },

  async stream() {
    const stream = client.messages.stream(request);
    const events = [];
    let text = "";
    for await (const event of stream) {
      events.push(event.type);
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") {
        text += event.delta.text;
      }
    }
    const final = await stream.finalMessage();
    return {
      text,
      first: events[0],
      last: events.at(-1),
      final_text: final.content[0].text,
      stop_reason: final.stop_reason,
      output_tokens: final.usage.output_tokens,
    };
  },

  async errors() {
    const stranger = new Anthropic({ apiKey: `vl_uk_${"0".repeat(48)}`, baseURL: url, maxRetries: 0 });
    return {
      unauthorized: await refusal(() => stranger.messages.create(request), Anthropic.AuthenticationError),
      bad_request: await refusal(
        () => client.messages.create({ model: "gpt-test", messages: request.messages, max_tokens: -1 }),
        Anthropic.BadRequestError,
      ),
      not_found: await refusal(
        () => client.messages.create({ ...request, model: "no-such-model" }),
        Anthropic.NotFoundError,
      ),
      rate_limited: await refusal(
        () => client.messages.create({ ...request, model: "limited" }),
        Anthropic.RateLimitError,
      ),
    };
  },
});
