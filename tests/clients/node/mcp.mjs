// `@modelcontextprotocol/sdk`'s Streamable HTTP client against the gateway's MCP endpoint, with the key as a
// Bearer header: node mcp.mjs CASE... (MCP_PATH names the endpoint, e.g. /api/v1/mcp/files).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

import { key, run, url } from "./run.mjs";

const endpoint = new URL(process.env.MCP_PATH ?? "/api/v1/mcp/voidllm", url);

async function connect(bearer) {
  const client = new Client({ name: "voidllm-client-matrix", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(endpoint, {
    requestInit: { headers: { Authorization: `Bearer ${bearer}` } },
  });
  await client.connect(transport);
  return client;
}

await run({
  async session() {
    const client = await connect(key);
    try {
      const tools = await client.listTools();
      const echoed = await client.callTool({ name: "echo", arguments: { text: "from node" } });
      const failed = await client.callTool({ name: "fail", arguments: { reason: "on purpose" } });
      return {
        server: client.getServerVersion()?.name ?? null,
        protocol: client.transport?.protocolVersion ?? null,  // what initialize negotiated
        tools: tools.tools.map((tool) => tool.name).sort(),
        echoed: { structured: echoed.structuredContent ?? null, is_error: echoed.isError ?? false },
        failed: { is_error: failed.isError ?? false },
      };
    } finally {
      await client.close();
    }
  },

  async codemode() {
    const client = await connect(key);
    try {
      const tools = await client.listTools();
      const code = 'const r = await tools.files.echo({text: "from a node script"}); console.log("seen"); return r.text;';
      const ran = await client.callTool({ name: "execute_code", arguments: { code } });
      const failed = await client.callTool({ name: "execute_code", arguments: { code: "throw new TypeError('nope')" } });
      return {
        server: client.getServerVersion()?.name ?? null,
        tools: tools.tools.map((tool) => tool.name),
        ran: { answer: JSON.parse(ran.content[0].text), is_error: ran.isError ?? false },
        failed: { text: failed.content[0].text, is_error: failed.isError ?? false },
      };
    } finally {
      await client.close();
    }
  },

  async unauthorized() {
    const client = await connect(`vl_uk_${"0".repeat(48)}`);
    await client.close();
    return { connected: true };
  },
});
