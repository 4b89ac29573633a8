// Who a robot's certificate says it is. The TLS handshake already proved the certificate chains to
// the robot CA and is within its validity; this decides whether it still admits a robot: it must be
// registered (not deleted or replaced by a re-enrollment), not revoked, and name its own robot.
// `used` hears of every certificate admitted (a renewal's first use revokes the one it renewed).

import type { Robots } from '../store/robots.js';
import { RobotRefused } from './robot-tls.js';

export function robotAuthenticator(robots: Pick<Robots, 'certificateByFingerprint'>, used: (fingerprint: Buffer) => Promise<void> = async () => {}) {
  return async (fingerprint: Buffer, commonName: string): Promise<{ robotId: string }> => {
    const found = await robots.certificateByFingerprint(fingerprint);
    if (!found) throw new RobotRefused('UNKNOWN_CERTIFICATE', 'this certificate is not registered (was the robot deleted or re-enrolled?)');
    if (found.certificate.revokedAt) throw new RobotRefused('CERTIFICATE_REVOKED', 'this certificate was revoked; ask the owner for a new one');
    if (found.robot.id !== commonName) throw new RobotRefused('UNKNOWN_CERTIFICATE', 'the certificate subject does not name its robot');
    await used(fingerprint);
    return { robotId: found.robot.id };
  };
}
