import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";
import type { Plugin } from "vite";

/**
 * In `npm run dev` only: insert the `<base href>` the gateway inserts in production (one `../` per
 * directory level of the route), so deep routes reload correctly.
 */
function devBaseTag(): Plugin {
  return {
    name: "voidllm-dev-base-tag",
    apply: "serve",
    transformIndexHtml(html, ctx) {
      const path = (ctx.originalUrl ?? ctx.path).split("?")[0] ?? "/";
      const depth = Math.max(0, path.split("/").length - 2);
      const href = depth === 0 ? "./" : "../".repeat(depth);
      return html.replace("<head>", `<head>\n    <base href="${href}" />`);
    },
  };
}

// Relative asset URLs (`base: './'`): the gateway serves the app at `/` or behind a proxy under a
// sub-path, and inserts a `<base href>` into index.html for deep routes (see /tmp/brief/ui-contract.md).
export default defineConfig({
  base: "./",
  plugins: [react(), tailwindcss(), devBaseTag()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    // `npm run dev` talks to a local gateway (scripts/serve --port 18080).
    proxy: {
      "/api": "http://127.0.0.1:18080",
    },
  },
  test: {
    environment: "jsdom",
    globals: false,
    setupFiles: ["./src/test/setup.ts"],
    css: false,
    restoreMocks: true,
    testTimeout: 20_000,
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
