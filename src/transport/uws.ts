// The only module that imports uWebSockets.js (installed as an npm alias of a build that loads on
// this platform; see docs/architecture.md). A future official build is a one-line change here.
// It must be a default import: the named exports type-check but are undefined at run time.

import uWS from 'uWebSockets.js';

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
export { uWS };
