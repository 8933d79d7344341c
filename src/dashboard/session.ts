// Who is signed in. The token lives in sessionStorage (this tab only) and travels only in the
// Authorization header and the socket's auth, never in a URL.
import { batch, signal } from '@preact/signals';
import type { Me } from './types.js';

const KEY = 'aiecs.token';

function stored(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export const session = {
  token: signal<string | null>(stored()),
  me: signal<Me | null>(null),
  /** Why the sign-in form is shown (an expired or refused token), if not a plain first visit. */
  message: signal<string | null>(null),
  /** Checking the token with /api/me. */
  checking: signal(false),
};

/**
 * A `#token=<JWT>` fragment (the link `aiecs up` prints) moves into sessionStorage and out of the
 * address bar and the history at once, before anything else runs.
 */
export function takeTokenFromFragment(): void {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return;
  const token = decodeURIComponent(m[1]!);
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  setToken(token);
}

export function setToken(token: string): void {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // private mode without storage: the token lasts as long as the page
  }
  session.token.value = token;
}

export function signOut(message: string | null = null): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing stored
  }
  batch(() => {
    session.token.value = null;
    session.me.value = null;
    session.message.value = message;
  });
}
