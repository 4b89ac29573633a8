// Who is signed in, and the one WebSocket of this tab: the SDK client (switchboard/client), made
// when the session starts and closed when it ends. The WebSocket authenticates with the cookie
// session's access token, which the page asks the hub for (POST /auth/socket-token), refreshing
// the session first when the access cookie has expired.

import { signal } from '@preact/signals';
import { type ClientState, type HelloInfo, SwitchboardClient } from '../../src/client/index.js';
import { ApiError, api, refreshSession, whenSignedOut } from './api.js';
import type { Me } from './types.js';

/** undefined while the first check runs; null when nobody is signed in. */
export const me = signal<Me | null | undefined>(undefined);
export const client = signal<SwitchboardClient | undefined>(undefined);
export const connection = signal<ClientState>('idle');
export const hello = signal<HelloInfo | undefined>(undefined);
/** A problem worth showing in the header (the last one), cleared by the next success. */
export const problem = signal<string | undefined>(undefined);

async function socketToken(): Promise<string> {
  try {
    return (await api<{ token: string }>('POST', '/auth/socket-token')).token;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && (await refreshSession())) return (await api<{ token: string }>('POST', '/auth/socket-token')).token;
    throw e;
  }
}

function start(user: Me): void {
  me.value = user;
  const c = new SwitchboardClient({ url: '/ws', token: socketToken });
  c.on('state', (s) => {
    connection.value = s;
    hello.value = c.hello;
  });
  c.on('error', (e) => {
    problem.value = e.message;
  });
  client.value = c;
  c.connect().catch((e: Error) => {
    problem.value = `Could not connect: ${e.message}`;
  });
}

function stop(): void {
  const c = client.value;
  client.value = undefined;
  hello.value = undefined;
  connection.value = 'idle';
  me.value = null;
  void c?.close();
}

whenSignedOut(stop);

/** At page load: resume the cookie session if there is one (its readable CSRF cookie says so). */
export async function boot(): Promise<void> {
  if (!document.cookie.split(/;\s*/).some((c) => c.startsWith('sb_csrf='))) {
    me.value = null;
    return;
  }
  try {
    start((await api<{ user: Me }>('GET', '/auth/me')).user);
  } catch {
    me.value = null;
  }
}

export async function login(username: string, password: string): Promise<void> {
  start((await api<{ user: Me }>('POST', '/auth/login', { username, password, cookie: true })).user);
}

export async function loginWithCode(email: string, code: string): Promise<void> {
  start((await api<{ user: Me }>('POST', '/auth/code/login', { email, code, cookie: true })).user);
}

export async function register(username: string, password: string): Promise<void> {
  await api('POST', '/auth/register', { username, password });
  await login(username, password);
}

export async function logout(): Promise<void> {
  try {
    await api('POST', '/auth/logout');
  } finally {
    stop();
  }
}
