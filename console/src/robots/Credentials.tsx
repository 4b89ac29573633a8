// A robot's new certificate and private key, shown once (at enrollment and rotation): the hub
// keeps no copy of the key. A certificate signed for the robot's own key (its CSR) comes without
// one: then the certificate and the CA certificate are what the robot needs.

import { useState } from 'preact/hooks';
import { Dialog } from '../chat/NewRoom.js';
import { download } from './download.js';

export interface Issued {
  robot: { id: string; name: string };
  certificatePem: string;
  /** Absent when the hub signed the robot's own request: the key never left the robot. */
  privateKeyPem?: string;
  caPem?: string;
  fingerprint: string;
  notAfter: string;
}

export function Credentials({ issued, onClose }: { issued: Issued; onClose: () => void }) {
  const base = issued.robot.id;
  const key = issued.privateKeyPem;
  const [saved, setSaved] = useState(false);
  return (
    <Dialog
      title={`Credentials for ${issued.robot.name}`}
      onClose={onClose}
      mayClose={() => saved || key === undefined || confirm('The private key has not been downloaded, and it cannot be shown again. Close anyway?')}
    >
      {key !== undefined ? (
        <p>
          <strong>Download the private key now:</strong> it is shown this once and the hub keeps no copy. Install both files on the robot; it connects with them
          over mutual TLS.
        </p>
      ) : (
        <p>The certificate is for the key the robot made itself: the hub never saw it. Install the certificate (and the CA certificate) on the robot.</p>
      )}
      <dl class="facts">
        <dt>Robot id</dt>
        <dd>
          <code>{issued.robot.id}</code>
        </dd>
        <dt>Fingerprint</dt>
        <dd>
          <code class="wrap">{issued.fingerprint}</code>
        </dd>
        <dt>Valid until</dt>
        <dd>{new Date(issued.notAfter).toLocaleString()}</dd>
      </dl>
      <div class="row">
        <button type="button" class="primary" onClick={() => download(`${base}.crt`, issued.certificatePem)}>
          Download certificate
        </button>
        {key !== undefined && (
          <button
            type="button"
            class="primary"
            onClick={() => {
              download(`${base}.key`, key);
              setSaved(true);
            }}
          >
            Download private key
          </button>
        )}
        {issued.caPem !== undefined && (
          <button type="button" onClick={() => download('robot-ca.crt', issued.caPem as string)}>
            Download CA certificate
          </button>
        )}
      </div>
    </Dialog>
  );
}
