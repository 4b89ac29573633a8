// The human-readable API reference at /docs: a static page that renders /api/openapi.json in the
// browser. Self-contained (no CDN) so it works on an offline deployment.

export const docsPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchboard API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 2rem;color:#1d2330}
h1{margin-bottom:0}code,pre{font:13px ui-monospace,monospace;background:#f3f4f7;border-radius:4px}
pre{padding:.6rem;overflow:auto}code{padding:0 .25rem}
details{border:1px solid #dfe2ea;border-radius:6px;margin:.4rem 0;padding:.3rem .7rem}
summary{cursor:pointer}.m{display:inline-block;width:4.2rem;font-weight:600}
.GET{color:#1565c0}.POST{color:#2e7d32}.DELETE{color:#c62828}.PUT,.PATCH{color:#ef6c00}
.lock:after{content:" \\1F512";font-size:12px}
</style></head><body>
<h1>Switchboard API</h1><p id="desc"></p>
<p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1).</p>
<div id="ops">Loading…</div>
<script>
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
fetch('/api/openapi.json').then((r) => r.json()).then((doc) => {
  document.getElementById('desc').textContent = doc.info.description + ' Version ' + doc.info.version + '.';
  const byTag = {};
  for (const [path, ops] of Object.entries(doc.paths)) for (const [m, op] of Object.entries(ops)) (byTag[op.tags[0]] ??= []).push([m.toUpperCase(), path, op]);
  let html = '';
  for (const [tag, ops] of Object.entries(byTag)) {
    html += '<h2>' + esc(tag) + '</h2>';
    for (const [m, path, op] of ops) {
      html += '<details><summary><span class="m ' + m + '">' + m + '</span><code' + (op.security.length ? ' class="lock"' : '') + '>' + esc(path) + '</code> ' + esc(op.summary) + '</summary>';
      if (op.description) html += '<p>' + esc(op.description) + '</p>';
      if (op.parameters) html += '<p><b>Parameters</b></p><ul>' + op.parameters.map((p) => '<li><code>' + esc(p.name) + '</code> (' + p.in + ') ' + esc(p.description) + '</li>').join('') + '</ul>';
      if (op.requestBody) html += '<p><b>Body</b></p><pre>' + esc(JSON.stringify(op.requestBody.content['application/json'].schema, null, 2)) + '</pre>';
      html += '<p><b>Responses</b></p><ul>' + Object.entries(op.responses).map(([c, r]) => '<li><code>' + c + '</code> ' + esc(r.description) + '</li>').join('') + '</ul></details>';
    }
  }
  html += '<h2>Schemas</h2>' + Object.entries(doc.components.schemas).map(([n, s]) => '<details><summary><code>' + esc(n) + '</code></summary><pre>' + esc(JSON.stringify(s, null, 2)) + '</pre></details>').join('');
  document.getElementById('ops').innerHTML = html;
}).catch((e) => { document.getElementById('ops').textContent = 'Could not load the API document: ' + e; });
</script></body></html>`;
