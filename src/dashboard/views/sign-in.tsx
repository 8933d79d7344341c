// The sign-in form: a token pasted in (the link `aiecs up` prints signs in without it).
import { useState } from 'preact/hooks';
import { session, setToken } from '../session.js';

export function SignIn() {
  const [value, setValue] = useState('');
  const submit = (e: Event) => {
    e.preventDefault();
    const token = value.trim().replace(/^Bearer\s+/i, '');
    if (!token) return;
    session.message.value = null;
    setToken(token);
  };
  return (
    <main class="sign-in">
      <form class="card sign-in-card" onSubmit={submit} data-view="sign-in">
        <h1>Sign in to aiecs</h1>
        {session.message.value && (
          <p class="notice notice-error" role="alert" data-sign-in-message>
            {session.message.value}
          </p>
        )}
        <p class="muted">
          Paste a token (a JWT from <span class="mono">aiecs token</span>), or open the link{' '}
          <span class="mono">aiecs up</span> prints. It is kept in this tab only.
        </p>
        <label for="token">Token</label>
        <textarea
          id="token"
          name="token"
          rows={4}
          autocomplete="off"
          spellcheck={false}
          value={value}
          onInput={(e) => setValue((e.target as HTMLTextAreaElement).value)}
        />
        <button type="submit" class="btn btn-primary" disabled={session.checking.value}>
          {session.checking.value ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
