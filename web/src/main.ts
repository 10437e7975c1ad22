/** Entry: sign-in, then a hash router: `#/` the alert overview, `#/merchants/<id>` a merchant. */
import './style.css';
import { api, HttpError, session, takeKeyFromUrl } from './api.ts';
import { $, html, render } from './format.ts';
import { startHealth, startSearch } from './header.ts';
import { live } from './live.ts';
import { home } from './views/home.ts';
import { merchant } from './views/merchant.ts';
import { signIn } from './views/signin.ts';
import { tuningSections } from './views/tuning.ts';

const main = $('#main');
let dispose: (() => void) | null = null;
let started = false;

function route(): void {
  dispose?.();
  dispose = null;
  const m = /^#\/merchants\/([^/?#]+)/.exec(location.hash);
  if (location.hash.startsWith('#/rules')) {
    main.replaceChildren();
    dispose = tuningSections(main);
  } else dispose = m ? merchant(main, decodeURIComponent(m[1])) : home(main);
  window.scrollTo(0, 0);
}

async function boot(error: string | null = null): Promise<void> {
  takeKeyFromUrl();
  if (!session.key) return signIn(main, error, () => void boot());
  try {
    const me = await api<{ role: 'viewer' | 'admin'; tz: string }>('/api/me');
    session.role = me.role;
    session.tz = me.tz;
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) {
      session.clear();
      return signIn(main, 'That key was not accepted.', () => void boot());
    }
    render(main, html`<p class="error">The API is not answering (${(err as Error).message}). Retrying…</p>`);
    setTimeout(() => void boot(), 3000);
    return;
  }
  render($('#who'), html`<span class="muted">${session.role}</span> <button class="link" id="signout">sign out</button>`);
  $('#signout').addEventListener('click', () => { session.clear(); location.reload(); });
  if (!started) {
    started = true;
    startHealth();
    startSearch();
    live.connect();
    window.addEventListener('hashchange', route);
    window.addEventListener('riskmon:unauthorized', () => { session.clear(); location.reload(); });
  }
  route();
}

void boot();
