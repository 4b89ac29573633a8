// The API reference at /docs: Swagger UI (swagger-ui-dist, bundled: nothing is fetched from another
// host) rendering the node's own /api/openapi.json, with "Try it out". Requests go to this node;
// with the console's cookie session they carry its CSRF token, or paste a bearer token under
// Authorize.

import SwaggerUI from 'swagger-ui-dist/swagger-ui-es-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';

function csrf(): string {
  const m = /(?:^|;\s*)sb_csrf=([^;]+)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1] as string) : '';
}

SwaggerUI({
  url: '/api/openapi.json',
  dom_id: '#docs',
  deepLinking: true,
  defaultModelsExpandDepth: 0,
  // No badge that sends the document to validator.swagger.io.
  validatorUrl: null,
  requestInterceptor: (req: { method?: string; headers: Record<string, string> }) => {
    if (req.method && req.method !== 'GET' && csrf()) req.headers['X-CSRF-Token'] = csrf();
    return req;
  },
});
