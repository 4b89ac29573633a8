// A small JSON client for end-to-end tests through real sockets (Node's fetch).

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RequestOptions {
  token?: string | undefined;
  headers?: Record<string, string>;
  /** A raw body sent as is (with content-type application/json unless headers say otherwise). */
  raw?: string | Uint8Array;
}

export class Api {
  constructor(readonly base: string) {}

  async request<T = any>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let payload: string | Uint8Array | undefined;
    if (opts.raw !== undefined) payload = opts.raw;
    else if (body !== undefined) payload = JSON.stringify(body);
    if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    const res = await fetch(this.base + path, { method, headers, body: payload, redirect: 'manual' });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }

  get<T = any>(path: string, opts?: RequestOptions) {
    return this.request<T>('GET', path, undefined, opts);
  }
  post<T = any>(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request<T>('POST', path, body, opts);
  }
  delete<T = any>(path: string, opts?: RequestOptions) {
    return this.request<T>('DELETE', path, undefined, opts);
  }

  /** Registers and logs in a user; returns its id and tokens. */
  async signUp(
    username: string,
    password = 'correct horse battery',
  ): Promise<{ id: string; token: string; refreshToken: string; username: string; password: string }> {
    const r = await this.post('/api/v1/auth/register', { username, password });
    if (r.status !== 201) throw new Error(`register ${username}: ${r.status} ${r.text}`);
    const l = await this.post('/api/v1/auth/login', { username, password });
    if (l.status !== 200) throw new Error(`login ${username}: ${l.status} ${l.text}`);
    return { id: r.body.user.id, token: l.body.accessToken, refreshToken: l.body.refreshToken, username, password };
  }
}

let n = 0;
/** A username unique within this process. */
export const uniqueName = (prefix = 'user') => `${prefix}${process.pid.toString(36)}${(++n).toString(36)}`;

/** A group room owned by `owner`, with `members` joined; its id. */
export async function roomWith(api: Api, owner: { token: string }, ...members: { token: string }[]): Promise<string> {
  const r = await api.post('/api/v1/rooms', { kind: 'group', name: `room ${uniqueName('r')}` }, { token: owner.token });
  if (r.status !== 201) throw new Error(`create room: ${r.status} ${r.text}`);
  for (const m of members) {
    const j = await api.post(`/api/v1/rooms/${r.body.room.id}/join`, undefined, { token: m.token });
    if (j.status !== 200) throw new Error(`join: ${j.status} ${j.text}`);
  }
  return r.body.room.id;
}

/** Every stored message of a room, read through REST history page by page. */
export async function storedMessages(api: Api, room: string, token: string): Promise<{ seq: number; cid: string }[]> {
  const stored: { seq: number; cid: string }[] = [];
  for (let after = 0; ; ) {
    const page = await api.get(`/api/v1/rooms/${room}/messages?after=${after}&limit=200`, { token });
    if (page.status !== 200) throw new Error(`history: ${page.status} ${page.text}`);
    stored.push(...page.body.messages);
    if (page.body.messages.length < 200) return stored;
    after = stored.at(-1)?.seq ?? after;
  }
}
