// The owner signs a certificate signing request the robot made with its own key: paste it or pick
// the file; the answer (certificate and CA certificate, no key) is shown by Credentials. Like a
// rotation, it revokes the robot's other certificates.

import { useState } from 'preact/hooks';
import { MAX_CSR_PEM_CHARS } from '../../../src/protocol/csr-limits.js';
import { api } from '../api.js';
import { Dialog } from '../chat/NewRoom.js';
import { Alert } from '../ui.js';
import type { Issued } from './Credentials.js';

export function SignCsr({ robot, name, onSigned, onClose }: { robot: string; name: string; onSigned: (i: Issued) => void; onClose: () => void }) {
  const [csr, setCsr] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    try {
      const r = await api<Omit<Issued, 'robot'>>('POST', `/robots/${robot}/certificate`, { csr });
      onSigned({ robot: { id: robot, name }, ...r });
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Dialog title={`Sign a certificate request for ${name}`} onClose={onClose}>
      <p>
        Paste the request the robot made (<code>openssl req -new …</code>), or pick its file. The certificate is for the robot's own key, which never leaves it;
        the robot's other certificates stop working.
      </p>
      <form onSubmit={submit}>
        <label>
          Certificate request (PEM)
          <textarea
            name="csr"
            rows={8}
            required
            maxLength={MAX_CSR_PEM_CHARS}
            value={csr}
            onInput={(e) => setCsr((e.currentTarget as HTMLTextAreaElement).value)}
            placeholder="-----BEGIN CERTIFICATE REQUEST-----"
          />
        </label>
        <label>
          Or its file
          <input
            type="file"
            accept=".csr,.pem,.req,text/plain"
            onChange={(e) => {
              const file = (e.currentTarget as HTMLInputElement).files?.[0];
              if (file) void file.text().then(setCsr);
            }}
          />
        </label>
        <div class="row">
          <button type="submit" class="primary" disabled={busy || !csr.trim()}>
            Sign
          </button>
        </div>
      </form>
      <Alert error={error} />
    </Dialog>
  );
}
