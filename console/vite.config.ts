// Builds the web console into dist/console, which the hub serves at `/` (src/transport/console-files.ts).
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
    // Every asset is a file: an inlined data: URL would need `img-src data:` in the CSP.
    assetsInlineLimit: 0,
    reportCompressedSize: true,
    sourcemap: false,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8080', '/ws': { target: 'ws://127.0.0.1:8080', ws: true } } },
});
