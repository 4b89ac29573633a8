import { readFileSync } from 'node:fs';
import t from 'tap';
import { ConfigError, resolveConfig, spec } from '../src/config.js';

t.test('defaults need no configuration', async (t) => {
  const c = resolveConfig({}, {});
  t.equal(c.port, 8080);
  t.equal(c.host, '0.0.0.0');
  t.equal(c.databaseUrl, undefined);
  t.match(c.dataDir, /\/data$/);
  t.equal(c.limits.maxBodyBytes, 65_536);
});

t.test('flags beat environment beats defaults', async (t) => {
  t.equal(resolveConfig({}, { PORT: '9000' }).port, 9000);
  t.equal(resolveConfig({ port: '9100' }, { PORT: '9000' }).port, 9100);
  t.equal(resolveConfig({}, { SB_MAX_BODY_BYTES: '2048' }).limits.maxBodyBytes, 2048);
  t.same(resolveConfig({}, { SB_CORS_ORIGINS: 'https://a.example, http://localhost:3000' }).corsOrigins, ['https://a.example', 'http://localhost:3000']);
});

t.test('a bad value names the variable and the accepted form', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: 'eighty' }, /^PORT: expected an integer from 0 to 65535/],
    [{ PORT: '70000' }, /^PORT: expected an integer/],
    [{ DATABASE_URL: 'mysql://x' }, /^DATABASE_URL: expected a URL with scheme postgres: or postgresql:/],
    [{ DATABASE_URL: 'not a url' }, /^DATABASE_URL: expected a URL/],
    [{ NATS_URL: 'http://x' }, /^NATS_URL: expected a URL with scheme nats:/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: expected one of fatal, error/],
    [{ SB_COOKIE_SECURE: 'maybe' }, /^SB_COOKIE_SECURE: expected true or false/],
    [{ SB_CORS_ORIGINS: 'https://a.example/path' }, /^SB_CORS_ORIGINS: "https:\/\/a.example\/path" is not an origin/],
    [{ SB_TLS_CERT_FILE: '/x.pem' }, /SB_TLS_CERT_FILE and SB_TLS_KEY_FILE: set both/],
    [{ SB_ARGON2_MEMORY_KIB: '10' }, /^SB_ARGON2_MEMORY_KIB: expected an integer from 8192/],
  ];
  for (const [env, re] of cases) {
    t.throws(() => resolveConfig({}, env), { name: 'ConfigError', message: re }, JSON.stringify(env));
  }
  t.throws(() => resolveConfig({ port: 'x' }, {}), { message: /^--port: expected an integer/ });
  t.ok(new ConfigError('x') instanceof Error);
});

t.test('the README configuration table lists every setting', async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  for (const e of spec) t.match(readme, new RegExp(`\\| \`${e.env}\` \\|`), `${e.env} documented`);
  const documented = [...readme.matchAll(/^\| `([A-Z_0-9]+)` \|/gm)].map((m) => m[1]);
  t.same(documented.sort(), spec.map((e) => e.env).sort(), 'and nothing else');
  for (const e of spec)
    t.ok(
      readme.includes(`| \`--${e.flag}\` |`) && readme.includes(`| ${e.doc.replaceAll('|', '\\|')} |`),
      `${e.env}: flag and meaning as in config.ts (node scripts/config-table.mjs)`,
    );
});

t.test('every setting of Config has a spec entry with a default of the right kind', async (t) => {
  const c = resolveConfig({}, {}) as unknown as Record<string, unknown>;
  const keys = spec.map((e) => e.key);
  for (const k of Object.keys(c)) if (k !== 'limits') t.ok(keys.includes(k as never), `${k} in spec`);
  for (const k of Object.keys(c.limits as object)) t.ok(keys.includes(`limits.${k}` as never), `limits.${k} in spec`);
  for (const [k, v] of Object.entries(c.limits as object)) t.type(v, 'number', `limits.${k} has a numeric default`);
});
