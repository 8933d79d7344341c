// The HTTP API, as the CLI uses it. The token goes only in the Authorization header.
import { session, signOut } from './session.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function request<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const token = session.token.value;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] = 'application/json';
  }
  let res: Response;
  try {
    res = await fetch(`/api${path}`, { method: init.method ?? 'GET', headers, body, cache: 'no-store' });
  } catch (error) {
    throw new ApiError(0, 'NETWORK', `cannot reach the gateway: ${(error as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    const error = new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? res.statusText);
    // The token stopped being accepted (expired, revoked, another secret): sign in again.
    if (res.status === 401) signOut(`Your token was not accepted: ${error.message}`);
    throw error;
  }
  return parsed as T;
}

export const post = <T>(path: string, body: unknown = {}) => request<T>(path, { method: 'POST', body });

/** A query string from the set values only. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const taskPath = (id: string) => `/tasks/${encodeURIComponent(id)}`;
export const queuePath = (name: string) => `/queues/${encodeURIComponent(name)}`;
