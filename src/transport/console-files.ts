// The web console and the API reference: the files Vite built into dist/console, read once at
// start and served from memory. The pages (index.html at `/`, docs.html at `/docs`) are
// revalidated on every load (no-cache), so a new build takes effect at once; files under /assets/
// carry a content hash in their names, so browsers keep them for a year. The build wrote a Brotli
// and a gzip copy beside each file (scripts/console-build.mjs); the best one the browser accepts is
// sent, so a node compresses nothing itself.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Reply } from './http.js';

/**
 * Where `npm run build` puts the console: next to the compiled hub (dist/transport → dist/console),
 * or, when the hub runs from its sources (tests, tsx), in dist/ beside src/.
 */
export const CONSOLE_DIR =
  ['../console/', '../../dist/console/'].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((dir) => existsSync(path.join(dir, 'index.html'))) ??
  fileURLToPath(new URL('../console/', import.meta.url));

/**
 * The pages' Content-Security-Policy: their own scripts and styles only (no inline code), and no
 * request to any other host. `blob:` images are the previews of files picked before upload;
 * `data:` ones the icons in Swagger UI's stylesheet.
 */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; font-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

interface StaticFile {
  type: string;
  raw: Buffer;
  br: Buffer | undefined;
  gzip: Buffer | undefined;
}

export class ConsoleFiles {
  private readonly files = new Map<string, StaticFile>();

  /** Reads `dir` (the pages and assets/); an unbuilt console leaves the set empty. */
  constructor(dir: string = CONSOLE_DIR) {
    for (const page of ['index.html', 'docs.html']) if (existsSync(path.join(dir, page))) this.add(dir, page);
    const assets = path.join(dir, 'assets');
    if (!existsSync(assets)) return;
    for (const name of readdirSync(assets)) if (TYPES[path.extname(name)]) this.add(dir, `assets/${name}`);
  }

  get built(): boolean {
    return this.files.has('index.html');
  }

  /** The reply for `name` (`index.html`, `docs.html` or `assets/<file>`), or undefined when there is no such file. */
  reply(name: string, acceptEncoding: string | undefined): Reply | undefined {
    const f = this.files.get(name);
    if (!f) return undefined;
    const ok = acceptedCodings(acceptEncoding);
    const [data, encoding] = f.br && ok.has('br') ? [f.br, 'br'] : f.gzip && ok.has('gzip') ? [f.gzip, 'gzip'] : [f.raw, undefined];
    const immutable = name.startsWith('assets/');
    return {
      raw: { contentType: f.type, data },
      headers: {
        'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        vary: 'accept-encoding',
        ...(encoding ? { 'content-encoding': encoding } : {}),
        ...(immutable ? {} : { 'content-security-policy': CONSOLE_CSP, 'x-frame-options': 'DENY', 'referrer-policy': 'same-origin' }),
      },
    };
  }

  private add(dir: string, name: string): void {
    const file = path.join(dir, name);
    const copy = (ext: string) => (existsSync(file + ext) ? readFileSync(file + ext) : undefined);
    this.files.set(name, { type: TYPES[path.extname(name)] as string, raw: readFileSync(file), br: copy('.br'), gzip: copy('.gz') });
  }
}

/** The content codings an Accept-Encoding header accepts (those without q=0). */
export function acceptedCodings(header: string | undefined): Set<string> {
  const out = new Set<string>();
  for (const part of (header ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (name && (q === undefined || Number(q.slice(2)) > 0)) out.add(name);
  }
  return out;
}
