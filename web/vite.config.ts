// Builds the console and portal into dist/web (served by the protection server at /); no CDN, all assets local.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: {
    // HOLDFAST_WEB_OUT lets a private build tree (tests) take the output elsewhere.
    outDir: process.env.HOLDFAST_WEB_OUT ?? fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
});
