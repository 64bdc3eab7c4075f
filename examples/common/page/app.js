// The whole front end of the cookie mode: the browser keeps the tokens (HttpOnly cookies this
// script cannot read); the script only sends the CSRF cookie's value back in X-CSRF-Token on
// requests that change something.
'use strict';

const $ = (id) => document.getElementById(id);

/** The session's CSRF value: the one cookie the page may read. */
function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)__Host-csrf_token=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : '';
}

function show(status) {
  $('status').textContent = String(status);
}

/** POST to this server with the CSRF header (and a JSON body when given). */
function post(path, body) {
  const headers = { 'X-CSRF-Token': csrfToken() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(path, {
    method: 'POST',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
}

/** Renew the access cookie from the refresh cookie; whether it worked. */
async function refresh() {
  const res = await post('/refresh');
  show(res.status);
  return res.ok;
}

/** Who is signed in: /protected, renewing the access cookie once if it expired. */
async function whoami() {
  let res = await fetch('/protected', { credentials: 'same-origin' });
  if (res.status === 401 && csrfToken() && (await refresh())) {
    res = await fetch('/protected', { credentials: 'same-origin' });
  }
  const me = res.ok ? await res.json() : {};
  $('whoami').textContent = me.username || me.client_id || '';
  return res;
}

/** An action that needs a fresh access cookie: retried once after a refresh on 401. */
async function act(path) {
  let res = await post(path);
  if (res.status === 401 && csrfToken() && (await refresh())) res = await post(path);
  show(res.status);
  return res;
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const res = await post('/login', { username: $('username').value, password: $('password').value });
  if (res.ok) await whoami();
  show(res.status);
});

$('refresh').addEventListener('click', async () => {
  if (await refresh()) await whoami();
});

for (const [id, path] of [['logout', '/logout'], ['logout-all', '/logout-all']]) {
  $(id).addEventListener('click', async () => {
    const res = await act(path);
    if (res.ok) $('whoami').textContent = '';
  });
}

// A reload keeps the user signed in for as long as the session lives.
whoami();
