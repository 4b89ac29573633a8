// Each person's own stream across two nodes (real NATS, one PostgreSQL): A acts through node 2
// while B's socket is on node 1, and B resumes on node 2 (test/helpers/notices.ts).

import t from 'tap';
import type { Api } from './helpers/api.js';
import { startCluster } from './helpers/cluster.js';
import { FAST, UNLIMITED } from './helpers/hub.js';
import { walkThroughNotices } from './helpers/notices.js';

const cluster = await startCluster(t, 2, { ...FAST, ...UNLIMITED });
const [n1, n2] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
const [api1, api2] = cluster.apis as [Api, Api];

t.test('A on node 2, B on node 1, B resumes on node 2', (t) => walkThroughNotices(t, { apiA: api2, apiB: api1, urlB: n1.url, urlResume: n2.url }));
