// Who is signed in, and the one WebSocket of this tab: the SDK client (switchboard/client), made
// when the session starts and closed when it ends. The WebSocket authenticates with a socket token
// of the cookie session (POST /auth/socket-token), asked for at each connection and `reauth`.

import { signal } from '@preact/signals';
import { type ClientState, type HelloInfo, SwitchboardClient } from '../../src/client/index.js';
import { ApiError, api, whenSignedOut } from './api.js';
import { resetChat } from './chat/rooms.js';
import type { Me } from './types.js';

/** undefined while the first check runs; null when nobody is signed in. */
export const me = signal<Me | null | undefined>(undefined);
export const client = signal<SwitchboardClient | undefined>(undefined);
export const connection = signal<ClientState>('idle');
export const hello = signal<HelloInfo | undefined>(undefined);
/** A problem worth showing in the header (the last one), cleared by the next success. */
export const problem = signal<string | undefined>(undefined);

/** Other tabs of this browser: a sign-in or sign-out in one reloads the others, so none acts as the wrong person. */
const tabs = typeof BroadcastChannel === 'function' ? new BroadcastChannel('switchboard-session') : undefined;
if (tabs) tabs.onmessage = () => location.reload();

/** The SDK's token: a socket token of this cookie session (api() refreshes the session when needed). */
export async function socketToken(): Promise<string> {
  return (await api<{ token: string }>('POST', '/auth/socket-token')).token;
}

function start(user: Me): void {
  me.value = user;
  const c = new SwitchboardClient({ url: '/ws', token: socketToken });
  c.on('state', (s) => {
    connection.value = s;
    hello.value = c.hello;
    // Another tab signed someone else in on these cookies: start over as them.
    if (s === 'open' && c.hello && c.hello.user.id !== user.id) location.reload();
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
  problem.value = undefined;
  resetChat();
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

function signedIn(user: Me): void {
  start(user);
  tabs?.postMessage('signed-in');
}

export async function login(username: string, password: string): Promise<void> {
  signedIn((await api<{ user: Me }>('POST', '/auth/login', { username, password, cookie: true })).user);
}

export async function loginWithCode(email: string, code: string): Promise<void> {
  signedIn((await api<{ user: Me }>('POST', '/auth/code/login', { email, code, cookie: true })).user);
}

export async function register(username: string, password: string): Promise<void> {
  await api('POST', '/auth/register', { username, password });
  await login(username, password);
}

/** Ends the session on the hub; only then does the page sign out (a failure says so and stays). */
export async function logout(): Promise<void> {
  try {
    await api('POST', '/auth/logout');
  } catch (e) {
    // Gone already (refused, or ended elsewhere): nothing to end.
    if (!(e instanceof ApiError && e.status === 401)) {
      problem.value = `Could not sign out: ${(e as Error).message}`;
      return;
    }
  }
  stop();
  tabs?.postMessage('signed-out');
}
