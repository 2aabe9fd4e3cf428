import { defineConfig } from "vite";

// The desktop app embeds ui/dist; no dev server is needed to build it.
export default defineConfig({
  clearScreen: false,
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
});
