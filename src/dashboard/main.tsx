// The dashboard: sign-in, then the header and the routed view. A `#token=` fragment is taken
// before anything renders, so the token never stays in the address bar or the history.
import './styles.css';
import 'uplot/dist/uPlot.min.css';
import { effect } from '@preact/signals';
import { render } from 'preact';
import { request } from './api.js';
import { ConfirmDialog } from './components/confirm-dialog.js';
import { Toasts } from './components/toast.js';
import { fmtTime } from './format.js';
import { navigate, route, startRouter } from './router.js';
import { session, signOut, takeTokenFromFragment } from './session.js';
import { closeSocket, connection, openSocket } from './socket.js';
import type { Me } from './types.js';
import { Overview } from './views/overview.js';
import { SignIn } from './views/sign-in.js';
import { TaskPage } from './views/task-page.js';
import { Tasks } from './views/tasks.js';

takeTokenFromFragment();
startRouter();

// A new token is checked with /api/me before the page shows anything; then the socket opens.
let checked: string | null = null;
let landing = true;
effect(() => {
  const token = session.token.value;
  if (token === checked) return;
  checked = token;
  closeSocket();
  if (!token) return;
  session.checking.value = true;
  request<Me>('/me').then(
    (me) => {
      if (session.token.value !== token) return;
      session.checking.value = false;
      session.message.value = null;
      session.me.value = me;
      openSocket(token);
      // A user's link lands on #/; their own tasks are where they can go.
      if (!me.admin && route.value.name === 'overview' && landing) navigate('#/tasks', true);
      landing = false;
    },
    (error: Error) => {
      session.checking.value = false;
      if (session.token.value === token) signOut(`Your token was not accepted: ${error.message}`);
    },
  );
});

function Header() {
  const me = session.me.value!;
  const r = route.value.name;
  return (
    <header class="header">
      <a class="brand" href="#/">
        aiecs
      </a>
      <nav class="nav">
        {me.admin && (
          <a href="#/" class={r === 'overview' ? 'active' : ''}>
            Overview
          </a>
        )}
        <a href="#/tasks" class={r === 'tasks' || r === 'task' ? 'active' : ''}>
          Tasks
        </a>
      </nav>
      <div class="who">
        <span class={`dot dot-${connection.value}`} title={`live updates: ${connection.value}`} />
        <span data-who>
          {me.user_id}
          {me.admin && <span class="badge badge-admin">admin</span>}
        </span>
        {me.expires_at && <span class="muted small hide-phone">until {fmtTime(me.expires_at)}</span>}
        <button type="button" class="btn btn-small" onClick={() => signOut()}>
          Sign out
        </button>
      </div>
    </header>
  );
}

function View() {
  const me = session.me.value!;
  const r = route.value;
  switch (r.name) {
    case 'overview':
      if (!me.admin)
        return (
          <main class="page">
            <p class="notice notice-error" role="alert" data-needs-admin>
              The overview needs an admin token. You can see <a href="#/tasks">your own tasks</a>.
            </p>
          </main>
        );
      return <Overview />;
    case 'tasks':
      return <Tasks key={r.params.toString()} params={r.params} />;
    case 'task':
      return <TaskPage key={r.id} id={r.id} />;
    case 'sign-in':
      navigate('#/', true);
      return null;
    default:
      return (
        <main class="page">
          <p class="notice">
            Nothing here. Go to the <a href="#/tasks">tasks</a>.
          </p>
        </main>
      );
  }
}

function App() {
  if (!session.me.value) {
    if (session.checking.value && !session.message.value)
      return (
        <main class="sign-in">
          <p class="muted">Signing in…</p>
        </main>
      );
    return <SignIn />;
  }
  return (
    <>
      <Header />
      <View />
      <ConfirmDialog />
      <Toasts />
    </>
  );
}

render(<App />, document.getElementById('app')!);
