// Username + password sign-in, shared by the secretaries' page and the dashboard. Both pages
// have the same elements: #login-view holding #login-form (#username, #password, #login,
// #login-error), #app-view for the signed-in page, and a #logout button in it.

import { $, h, errorText } from './ui.js';
import { loadLabels } from './labels.js';

const EXPIRED = '登录已过期，请重新登录';

/// Wires the form to `client`. The page says:
/// - `accept(me)`: null when it serves this user (GET /me), otherwise why not;
/// - `enter(me)`: starts the page for the user;
/// - `leave()`: stops what runs while signed in (polling, timers), whenever the form shows;
/// - `forget()`: drops what the page holds of the user who signs out;
/// - `title`: the document title while the form shows.
export function passwordSignIn(client, { accept, enter, leave = () => {}, forget = () => {}, title }) {
  let signedIn = false;

  function show(message = '') {
    signedIn = false;
    leave();
    $('#app-view').classList.add('hidden');
    $('#login-view').classList.remove('hidden');
    $('#login-error').textContent = message;
    $('#login').disabled = false;
    if (title) document.title = title;
    setTimeout(() => ($('#username').value ? $('#password') : $('#username')).focus(), 0);
  }

  async function admit() {
    const me = await client.get('/me');
    const refusal = accept(me);
    if (refusal) {
      await client.logout();
      show(refusal);
      return;
    }
    $('#login-view').classList.add('hidden');
    $('#app-view').classList.remove('hidden');
    signedIn = true;
    await enter(me);
  }

  async function submit(e) {
    e.preventDefault();
    const username = $('#username').value.trim();
    const password = $('#password').value;
    const err = $('#login-error');
    if (!username || !password) {
      err.textContent = '请输入用户名和密码';
      return;
    }
    err.textContent = '';
    const btn = $('#login');
    btn.disabled = true;
    btn.textContent = '登录中…';
    try {
      await client.loginWithPassword(username, password);
      $('#password').value = '';
      await admit();
    } catch (ex) {
      // Keep what was typed; say why.
      show(errorText(ex));
    } finally {
      btn.disabled = false;
      btn.textContent = '登录';
    }
  }

  async function signOut() {
    signedIn = false;
    leave();
    await client.logout();
    forget();
    $('#username').value = '';
    show();
  }

  $('#login-form').addEventListener('submit', submit);
  $('#logout').addEventListener('click', signOut);
  client.onSignedOut = () => {
    if (signedIn) show(EXPIRED);
  };

  return {
    /// Loads the labels, then resumes the remembered session or shows the form.
    async start() {
      try {
        await loadLabels();
        if (client.signedIn && (await client.resume())) {
          await admit();
          return;
        }
        show();
      } catch (e) {
        if (e.status === 401) {
          show();
          return;
        }
        show(errorText(e));
        $('#login-error').append(
          h('button', { type: 'button', onclick: () => location.reload() }, '重试'),
        );
      }
    },
    show,
  };
}
