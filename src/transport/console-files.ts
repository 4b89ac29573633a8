// The web console: the files Vite built into dist/console, read once at start and served from
// memory. index.html is revalidated on every load (no-cache), so a new build takes effect at once;
// files under /assets/ carry a content hash in their names, so browsers keep them for a year.
// Each file is compressed once (Brotli and gzip) and sent in the best encoding the browser accepts.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { Reply } from './http.js';

/**
 * Where `npm run build` puts the console: next to the compiled hub (dist/transport → dist/console),
 * or, when the hub runs from its sources (tests, tsx), in dist/ beside src/.
 */
export const CONSOLE_DIR =
  ['../console/', '../../dist/console/'].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((dir) => existsSync(path.join(dir, 'index.html'))) ??
  fileURLToPath(new URL('../console/', import.meta.url));

/**
 * The console's Content-Security-Policy: its own scripts and styles only (no inline code), and no
 * request to any other host. `blob:` images are the previews of files picked before upload.
 */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; font-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};
/** Smaller files are sent as they are: compressing them saves less than its headers cost. */
const COMPRESS_FROM = 512;

interface StaticFile {
  type: string;
  raw: Buffer;
  br: Buffer | undefined;
  gzip: Buffer | undefined;
}

export class ConsoleFiles {
  private readonly files = new Map<string, StaticFile>();

  /** Reads `dir` (index.html and assets/); an unbuilt console leaves the set empty. */
  constructor(dir: string = CONSOLE_DIR) {
    if (!existsSync(path.join(dir, 'index.html'))) return;
    this.add('index.html', readFileSync(path.join(dir, 'index.html')));
    const assets = path.join(dir, 'assets');
    if (!existsSync(assets)) return;
    for (const name of readdirSync(assets)) {
      if (TYPES[path.extname(name)]) this.add(`assets/${name}`, readFileSync(path.join(assets, name)));
    }
  }

  get built(): boolean {
    return this.files.has('index.html');
  }

  /** The reply for `name` (`index.html` or `assets/<file>`), or undefined when there is no such file. */
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

  private add(name: string, raw: Buffer): void {
    const type = TYPES[path.extname(name)] as string;
    const squeeze = raw.length >= COMPRESS_FROM;
    this.files.set(name, {
      type,
      raw,
      br: squeeze ? brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length } }) : undefined,
      gzip: squeeze ? gzipSync(raw, { level: 9 }) : undefined,
    });
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
