import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { resolve } from "node:path";

// One HTML entry per window: each window loads only its own code.
export default defineConfig({
  plugins: [svelte()],
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      input: {
        signin: resolve(__dirname, "signin.html"),
        dashboard: resolve(__dirname, "dashboard.html"),
        purchase: resolve(__dirname, "purchase.html"),
        settings: resolve(__dirname, "settings.html"),
      },
    },
  },
  test: { include: ["src/**/*.test.ts"] },
});
