// Builds the web console and the API reference into dist/console, which the hub serves at `/` and
// `/docs` (src/transport/console-files.ts).
// Preact with its automatic JSX runtime; assets get content hashes so the hub can cache them for a year.
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  publicDir: false,
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: '../dist/console',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    // Every asset is a file, cached by its hash.
    assetsInlineLimit: 0,
    reportCompressedSize: true,
    sourcemap: false,
    // The console, and the API reference at /docs (Swagger UI), each its own page.
    rollupOptions: { input: { console: 'index.html', docs: 'docs.html' } },
    // Swagger UI is one 1.6 MB chunk, fetched only by /docs; the console's budget is checked by
    // scripts/console-build.mjs instead.
    chunkSizeWarningLimit: 2000,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8080', '/ws': { target: 'ws://127.0.0.1:8080', ws: true } } },
});
