import { defineConfig } from "vite";

// The console is served by the gateway at /ui (packages/gateway/src/console/static-files.ts), from
// this package's dist/. Everything is bundled: no CDN, nothing fetched at run time but the API.
export default defineConfig({
  base: "/ui/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // No inline scripts or data: URLs anywhere, so the gateway's CSP can be script-src 'self'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});
