// Signing in: a password, or a one-time code mailed to a verified address; and registering.

import { useState } from 'preact/hooks';
import { api } from './api.js';
import { login, loginWithCode, register } from './session.js';
import { Alert } from './ui.js';

type Mode = 'login' | 'register' | 'code';

export function Login() {
  const [mode, setMode] = useState<Mode>('login');
  const [error, setError] = useState<string | undefined>();
  const [info, setInfo] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [codeSent, setCodeSent] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const v = (k: string) => String(f.get(k) ?? '');
    setBusy(true);
    setError(undefined);
    try {
      if (mode === 'login') await login(v('username'), v('password'));
      else if (mode === 'register') {
        if (v('password') !== v('confirm')) throw new Error('The passwords differ.');
        await register(v('username'), v('password'));
      } else if (!codeSent) {
        await api('POST', '/auth/code', { email: v('email') });
        setCodeSent(true);
        setInfo('If that address is verified on an account, a code is on its way.');
      } else await loginWithCode(v('email'), v('code'));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const tab = (m: Mode, label: string) => (
    <button
      type="button"
      role="tab"
      aria-selected={mode === m}
      class={mode === m ? 'tab on' : 'tab'}
      onClick={() => {
        setMode(m);
        setError(undefined);
        setInfo(undefined);
        setCodeSent(false);
      }}
    >
      {label}
    </button>
  );

  return (
    <main class="login">
      <h1>
        <span class="logo" aria-hidden="true" /> Switchboard
      </h1>
      <div role="tablist" class="tabs">
        {tab('login', 'Sign in')}
        {tab('register', 'Create account')}
        {tab('code', 'Email code')}
      </div>
      <form onSubmit={submit} class="card" aria-busy={busy}>
        {mode !== 'code' && (
          <>
            <label>
              Username
              <input
                name="username"
                autocomplete="username"
                required
                maxLength={32}
                pattern="[A-Za-z0-9][A-Za-z0-9_.\-]{2,31}"
                title="3 to 32 letters, digits, _ . or -, starting with a letter or digit"
              />
            </label>
            <label>
              Password
              <input
                name="password"
                type="password"
                autocomplete={mode === 'login' ? 'current-password' : 'new-password'}
                required
                minLength={mode === 'register' ? 10 : 1}
              />
            </label>
          </>
        )}
        {mode === 'register' && (
          <label>
            Password again
            <input name="confirm" type="password" autocomplete="new-password" required minLength={10} />
          </label>
        )}
        {mode === 'code' && (
          <>
            <label>
              Email
              <input name="email" type="email" autocomplete="email" required />
            </label>
            {codeSent && (
              <label>
                Code
                <input name="code" inputMode="numeric" autocomplete="one-time-code" required />
              </label>
            )}
          </>
        )}
        <Alert error={error} />
        {info && <p class="info">{info}</p>}
        <button type="submit" class="primary" disabled={busy}>
          {mode === 'login' ? 'Sign in' : mode === 'register' ? 'Create account' : codeSent ? 'Sign in' : 'Send code'}
        </button>
      </form>
      <p class="muted">
        API reference: <a href="/docs">/docs</a>
      </p>
    </main>
  );
}
