/**
 * Entry: sign-in, then a hash router: `#/` the alert overview, `#/alerts/<id>` one alert, `#/merchants/<id>` a
 * merchant, `#/rules` rule precision. Keys: / search · j/k move through a list · Enter opens.
 */
import './style.css';
import { api, HttpError, session, signOut, takeKeyFromUrl, type Role } from './api.ts';
import { $, html, render } from './format.ts';
import { startHealth, startSearch } from './header.ts';
import { live } from './live.ts';
import { alertPage } from './views/alert.ts';
import { home } from './views/home.ts';
import { merchant } from './views/merchant.ts';
import { rulesPage } from './views/rules.ts';
import { signIn } from './views/signin.ts';
import { tuningSections } from './views/tuning.ts';

const main = $('#main');
let dispose: (() => void) | null = null;
let started = false;

/** The rules page: precision per rule and version (the desk), then versions, the draft editor and backtests. */
function rulesAndTuning(root: HTMLElement): () => void {
  const a = rulesPage(root);
  const b = tuningSections(root);
  return () => { a(); b(); };
}

function route(): void {
  dispose?.();
  dispose = null;
  const m = /^#\/merchants\/([^/?#]+)/.exec(location.hash);
  const a = /^#\/alerts\/([^/?#]+)/.exec(location.hash);
  dispose = m ? merchant(main, decodeURIComponent(m[1]))
    : a ? alertPage(main, decodeURIComponent(a[1]))
    : location.hash.startsWith('#/rules') ? rulesAndTuning(main)
    : home(main);
  const page = a || location.hash === '' || location.hash === '#/' ? 'alerts' : location.hash.startsWith('#/rules') ? 'rules' : '';
  document.querySelectorAll<HTMLAnchorElement>('#pages a').forEach((l) => l.classList.toggle('on', l.dataset.page === page));
  window.scrollTo(0, 0);
}

async function boot(error: string | null = null): Promise<void> {
  error = (await takeKeyFromUrl()) ?? error;
  try {
    const me = await api<{ role: Role; name: string; tz: string }>('/api/me');
    session.role = me.role;
    session.name = me.name;
    session.tz = me.tz;
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) return signIn(main, error, () => void boot());
    render(main, html`<p class="error">The API is not answering (${(err as Error).message}). Retrying…</p>`);
    setTimeout(() => void boot(), 3000);
    return;
  }
  render($('#who'), html`<span title="the name recorded for what you do">${session.name}</span> <span class="muted">${session.role}</span> <button class="link" id="signout">sign out</button>`);
  $('#signout').addEventListener('click', () => { live.close(); void signOut().then(() => location.reload()); });
  if (!started) {
    started = true;
    startHealth();
    startSearch();
    live.connect();
    window.addEventListener('hashchange', route);
    window.addEventListener('riskmon:unauthorized', () => { live.close(); location.reload(); });
    document.addEventListener('keydown', listKeys);
  }
  route();
}

/** / focuses the search; j and k move through the rows of the page's main list (their first link); Enter opens it. */
function listKeys(e: KeyboardEvent): void {
  const t = e.target as HTMLElement;
  if (/^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === '/') { e.preventDefault(); ($('#q') as HTMLInputElement).focus(); return; }
  if (e.key !== 'j' && e.key !== 'k') return;
  const links = [...main.querySelectorAll<HTMLAnchorElement>('table.nav tbody tr td:first-child a')];
  if (!links.length) return;
  e.preventDefault();
  const i = links.indexOf(document.activeElement as HTMLAnchorElement);
  const next = i < 0 ? 0 : Math.max(0, Math.min(links.length - 1, i + (e.key === 'j' ? 1 : -1)));
  links[next].focus();
  links[next].closest('tr')?.scrollIntoView({ block: 'nearest' });
}

void boot();
