import { signInError, signInWith } from '../api.ts';
import { $, html, render } from '../format.ts';

/** Asks for an API key once and exchanges it for a session cookie; the page keeps no key. */
export function signIn(main: HTMLElement, error: string | null, done: () => void): void {
  render(main, html`
    <section class="signin card">
      <h1>riskmon</h1>
      <p>Merchant risk monitoring. Enter an API key (from <code>RISKMON_API_KEYS</code>); it starts a session, the key is not kept.</p>
      <form id="signin">
        <input id="key" type="password" placeholder="API key" autocomplete="current-password" required minlength="24">
        <button type="submit">Sign in</button>
      </form>
      ${error ? html`<p class="error">${error}</p>` : ''}
    </section>`);
  const input = $('#key', main) as HTMLInputElement;
  input.focus();
  $('#signin', main).addEventListener('submit', (e) => {
    e.preventDefault();
    const key = input.value.trim();
    input.value = '';
    signInWith(key).then(done, (err) => signIn(main, signInError(err), done));
  });
}
