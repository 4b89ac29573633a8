// The web console's entry: resumes the cookie session, then shows the login or the app.

import { render } from 'preact';
import { Login } from './Login.js';
import { Shell } from './Shell.js';
import { boot, me } from './session.js';
import './styles.css';

function App() {
  const user = me.value;
  if (user === undefined) return <p class="splash">Loading…</p>;
  return user ? <Shell me={user} /> : <Login />;
}

render(<App />, document.getElementById('app') as HTMLElement);
void boot();
