// The robot endpoint's certificate check, alone: a certificate the handshake accepted still admits
// its robot only if it is registered, not revoked, and names that robot.

import t from 'tap';
import { robotAuthenticator } from '../src/transport/robot-auth.js';

const ROBOT = { id: 'r1', name: 'rover', ownerId: 'o', createdAt: new Date(0), lastSeenAt: null };
const cert = (revokedAt: Date | null) => ({
  fingerprint: Buffer.from('ab'),
  robotId: 'r1',
  serial: '1',
  notAfter: new Date(1e13),
  createdAt: new Date(0),
  revokedAt,
});

t.test('a registered, unrevoked certificate naming its robot admits it', async (t) => {
  const auth = robotAuthenticator({ certificateByFingerprint: async () => ({ certificate: cert(null), robot: ROBOT }) });
  t.same(await auth(Buffer.from('ab'), 'r1'), { robotId: 'r1' });
});

t.test('every other certificate is refused with the code the robot is told', async (t) => {
  const refused = async (found: Parameters<typeof robotAuthenticator>[0], cn: string, code: string, why: string) =>
    t.rejects(robotAuthenticator(found)(Buffer.from('ab'), cn), { name: 'RobotRefused', code }, why);
  await refused({ certificateByFingerprint: async () => undefined }, 'r1', 'UNKNOWN_CERTIFICATE', 'not registered (deleted, or re-enrolled)');
  await refused({ certificateByFingerprint: async () => ({ certificate: cert(new Date()), robot: ROBOT }) }, 'r1', 'CERTIFICATE_REVOKED', 'revoked');
  await refused(
    { certificateByFingerprint: async () => ({ certificate: cert(null), robot: ROBOT }) },
    'r2',
    'UNKNOWN_CERTIFICATE',
    'its subject names another robot',
  );
});
