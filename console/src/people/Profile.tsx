// Your account: profile and avatar, who may open a direct room with you, password, email address,
// and the devices signed in (each can be signed out).

import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { me as meSignal } from '../session.js';
import type { Me } from '../types.js';
import { Alert } from '../ui.js';

interface Device {
  id: string;
  current: boolean;
  createdAt: string;
  lastUsedAt: string;
  userAgent: string | null;
  ip: string | null;
}

const text = (form: HTMLFormElement, k: string) => String(new FormData(form).get(k) ?? '');

export function Profile({ me }: { me: Me }) {
  const [devices, setDevices] = useState<Device[]>([]);
  const [error, setError] = useState<string | undefined>();
  const [info, setInfo] = useState<string | undefined>();
  const guard = (f: () => Promise<unknown>, done?: string) =>
    void f().then(
      () => {
        setError(undefined);
        setInfo(done);
      },
      (e: Error) => {
        setError(e.message);
        setInfo(undefined);
      },
    );
  const loadDevices = () => guard(async () => setDevices((await api<{ sessions: Device[] }>('GET', '/auth/sessions')).sessions));
  useEffect(loadDevices, []);
  const updated = (r: { user: Me }) => {
    meSignal.value = r.user;
  };

  function saveProfile(e: Event) {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    guard(
      async () =>
        updated(
          await api('PATCH', '/auth/me', {
            displayName: text(f, 'displayName') || null,
            bio: text(f, 'bio') || null,
            timeZone: text(f, 'timeZone') || null,
            dmPolicy: text(f, 'dmPolicy'),
          }),
        ),
      'Profile saved.',
    );
  }

  function avatar(e: Event) {
    const file = (e.currentTarget as HTMLInputElement).files?.[0];
    if (file) guard(async () => updated(await api('PUT', '/auth/me/avatar', undefined, { file })), 'Avatar saved.');
  }

  function password(e: Event) {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    guard(async () => {
      await api('POST', '/auth/password', { currentPassword: text(f, 'current'), newPassword: text(f, 'new') });
      f.reset();
      loadDevices();
    }, 'Password changed; your other devices are signed out.');
  }

  function email(e: Event) {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    if (me.pendingEmail && text(f, 'code')) guard(async () => updated(await api('POST', '/auth/email/verify', { code: text(f, 'code') })), 'Address verified.');
    else
      guard(
        async () => updated(await api('POST', '/auth/email', { email: text(f, 'email'), password: text(f, 'password') })),
        'A code is on its way to that address.',
      );
  }

  return (
    <section class="page" aria-label="Your account">
      <h2>Your account</h2>
      <Alert error={error} />
      {info && (
        <p class="info" role="status">
          {info}
        </p>
      )}
      <div class="cols">
        <form class="card" onSubmit={saveProfile}>
          <h3>Profile</h3>
          <div class="row">
            {me.avatarUrl ? <img class="avatar" src={me.avatarUrl} alt="Your avatar" width={64} height={64} /> : <span class="avatar" />}
            <label class="grow">
              Avatar (PNG, JPEG, GIF or WebP)
              <input type="file" accept="image/png,image/jpeg,image/gif,image/webp" onChange={avatar} />
            </label>
          </div>
          <label>
            Username
            <input value={me.username} readOnly />
          </label>
          <label>
            Display name
            <input name="displayName" defaultValue={me.displayName ?? ''} maxLength={64} />
          </label>
          <label>
            About you
            <textarea name="bio" defaultValue={me.bio ?? ''} maxLength={500} rows={3} />
          </label>
          <label>
            Time zone
            <input name="timeZone" defaultValue={me.timeZone ?? ''} placeholder={Intl.DateTimeFormat().resolvedOptions().timeZone} />
          </label>
          <label>
            Who may start a direct conversation with you
            <select name="dmPolicy" defaultValue={me.dmPolicy}>
              <option value="anyone">anyone</option>
              <option value="contacts">my contacts only</option>
            </select>
          </label>
          <button type="submit" class="primary">
            Save profile
          </button>
        </form>
        <div>
          <form class="card" onSubmit={password}>
            <h3>Password</h3>
            <label>
              Current password
              <input name="current" type="password" autocomplete="current-password" required />
            </label>
            <label>
              New password
              <input name="new" type="password" autocomplete="new-password" required minLength={10} />
            </label>
            <button type="submit">Change password</button>
          </form>
          <form class="card" onSubmit={email}>
            <h3>Email</h3>
            <p class="muted">{me.email ? `Verified: ${me.email}` : 'No verified address: add one to sign in by code.'}</p>
            {me.pendingEmail ? (
              <label>
                Code sent to {me.pendingEmail}
                <input name="code" inputMode="numeric" autocomplete="one-time-code" required />
              </label>
            ) : (
              <>
                <label>
                  Address
                  <input name="email" type="email" required />
                </label>
                <label>
                  Your password
                  <input name="password" type="password" autocomplete="current-password" required />
                </label>
              </>
            )}
            <button type="submit">{me.pendingEmail ? 'Verify' : 'Send a code'}</button>
          </form>
        </div>
      </div>
      <h3>Signed-in devices</h3>
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Signed in</th>
            <th scope="col">Last active</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {devices.map((d) => (
            <tr key={d.id}>
              <td>
                {d.userAgent ?? 'unknown'} <span class="muted">{d.ip}</span>
              </td>
              <td>{new Date(d.createdAt).toLocaleString()}</td>
              <td>{new Date(d.lastUsedAt).toLocaleString()}</td>
              <td>
                {d.current ? (
                  'this one'
                ) : (
                  <button
                    type="button"
                    aria-label={`Sign out the device signed in ${new Date(d.createdAt).toLocaleString()}`}
                    onClick={() => guard(() => api('DELETE', `/auth/sessions/${d.id}`).then(loadDevices))}
                  >
                    Sign out
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
