// Routing by the hash: #/ overview, #/tasks?filters, #/tasks/<id>, #/sign-in.
import { signal } from '@preact/signals';

export type Route =
  | { name: 'overview' }
  | { name: 'tasks'; params: URLSearchParams }
  | { name: 'task'; id: string }
  | { name: 'sign-in' }
  | { name: 'not-found'; path: string };

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const [path = '/', search = ''] = raw.split('?', 2);
  if (path === '/' || path === '') return { name: 'overview' };
  if (path === '/sign-in') return { name: 'sign-in' };
  if (path === '/tasks' || path === '/tasks/') return { name: 'tasks', params: new URLSearchParams(search) };
  const task = /^\/tasks\/(.+)$/.exec(path);
  if (task) {
    try {
      return { name: 'task', id: decodeURIComponent(task[1]!) };
    } catch {
      return { name: 'not-found', path };
    }
  }
  return { name: 'not-found', path };
}

export const route = signal<Route>(parseHash(location.hash));

/** Called once the address is final (after a `#token=` fragment has been taken out of it). */
export function startRouter(): void {
  route.value = parseHash(location.hash);
  window.addEventListener('hashchange', () => (route.value = parseHash(location.hash)));
}

export function navigate(hash: string, replace = false): void {
  if (replace) {
    history.replaceState(null, '', `${location.pathname}${location.search}${hash}`);
    route.value = parseHash(hash);
  } else location.hash = hash;
}

export const taskHref = (id: string) => `#/tasks/${encodeURIComponent(id)}`;

export function tasksHref(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `#/tasks?${s}` : '#/tasks';
}
