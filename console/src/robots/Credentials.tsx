// A robot's new certificate and private key, shown once (at enrollment and rotation): the hub
// keeps no copy of the key.

import { useState } from 'preact/hooks';
import { Dialog } from '../chat/NewRoom.js';
import { download } from './download.js';

export interface Issued {
  robot: { id: string; name: string };
  certificatePem: string;
  privateKeyPem: string;
  fingerprint: string;
  notAfter: string;
}

export function Credentials({ issued, onClose }: { issued: Issued; onClose: () => void }) {
  const base = issued.robot.id;
  const [saved, setSaved] = useState(false);
  return (
    <Dialog
      title={`Credentials for ${issued.robot.name}`}
      onClose={onClose}
      mayClose={() => saved || confirm('The private key has not been downloaded, and it cannot be shown again. Close anyway?')}
    >
      <p>
        <strong>Download the private key now:</strong> it is shown this once and the hub keeps no copy. Install both files on the robot; it connects with them
        over mutual TLS.
      </p>
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
        <button
          type="button"
          class="primary"
          onClick={() => {
            download(`${base}.key`, issued.privateKeyPem);
            setSaved(true);
          }}
        >
          Download private key
        </button>
      </div>
    </Dialog>
  );
}
