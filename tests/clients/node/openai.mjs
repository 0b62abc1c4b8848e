// The `openai` SDK against the gateway's OpenAI-compatible API: node openai.mjs CASE...
import OpenAI, { toFile } from "openai";

import { key, refusal, run, url } from "./run.mjs";

const client = new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0, timeout: 20_000 });
const user = [{ role: "user", content: "hi" }];

await run({
  async chat() {
    const completion = await client.chat.completions.create({ model: "gpt-test", messages: user });
    return {
      content: completion.choices[0].message.content,
      finish_reason: completion.choices[0].finish_reason,
      usage: completion.usage,
    };
  },

  async stream() {
    const stream = await client.chat.completions.create({
      model: "gpt-test",
      messages: user,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let chunks = 0;
    let usage = null;
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta?.content ?? "";
      usage = chunk.usage ?? usage;
    }
    return { text, chunks, usage };
  },

  async embeddings() {
    const result = await client.embeddings.create({ model: "gpt-test", input: ["one", "two"] });
    return {
      count: result.data.length,
      dimensions: result.data[0].embedding.length,
      indexes: result.data.map((item) => item.index),
      usage: result.usage,
    };
  },

  async errors() {
    const stranger = new OpenAI({ apiKey: `vl_uk_${"0".repeat(48)}`, baseURL: `${url}/v1`, maxRetries: 0 });
    return {
      unauthorized: await refusal(
        () => stranger.chat.completions.create({ model: "gpt-test", messages: user }),
        OpenAI.AuthenticationError,
      ),
      bad_request: await refusal(
        () => client.chat.completions.create({ messages: user }),
        OpenAI.BadRequestError,
      ),
      not_found: await refusal(
        () => client.chat.completions.create({ model: "no-such-model", messages: user }),
        OpenAI.NotFoundError,
      ),
      rate_limited: await refusal(
        () => client.chat.completions.create({ model: "limited", messages: user }),
        OpenAI.RateLimitError,
      ),
    };
  },

  // The SDK builds the multipart body itself, with the file part before the model field (an alias, which
  // the gateway rewrites to the deployment's name).
  async transcription() {
    const wav = Buffer.concat([Buffer.from("RIFF"), Buffer.alloc(40)]);
    const result = await client.audio.transcriptions.create({
      file: await toFile(wav, "speech.wav", { type: "audio/wav" }),
      model: "speech-to-text",
    });
    return { text: result.text };
  },
});
