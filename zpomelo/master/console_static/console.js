// The zpomelo admin console: polls the master's JSON endpoints and renders tables.
// Every value is written with textContent (log lines and uids come from players and servers).
'use strict';

const POLL_MS = 1500;
let session = null;       // {username, level, mayAct, csrf}
let timer = null;

const $ = (sel) => document.querySelector(sel);

function cell(tr, value, cls) {
  const td = document.createElement('td');
  td.textContent = value === null || value === undefined ? '' : String(value);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fillTable(id, rows, render) {
  const body = document.querySelector(`#${id} tbody`);
  const fresh = document.createElement('tbody');
  for (const row of rows) fresh.appendChild(render(row));
  body.replaceWith(fresh);
}

function show(text, isError) {
  const el = $('#message');
  el.textContent = text;
  el.className = isError ? 'error' : '';
}

async function getJson(path) {
  const res = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
  if (res.status === 401) { window.location.href = '/login'; throw new Error('not logged in'); }
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf },
    body: JSON.stringify(body),
  });
  if (res.status === 401) { window.location.href = '/login'; throw new Error('not logged in'); }
  let answer = {};
  try { answer = await res.json(); } catch (e) { /* a redirect page, not JSON */ }
  return { status: res.status, answer };
}

const fmtUptime = (s) => (s === null || s === undefined ? '' :
  s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);
const fmtMb = (b) => (b === null || b === undefined ? '' : `${(b / 1048576).toFixed(1)} MB`);
const fmtTime = (t) => (t ? new Date(t * 1000).toLocaleString() : '');

function renderServer(s) {
  const tr = document.createElement('tr');
  tr.dataset.server = s.id;
  tr.dataset.state = s.state || '';
  cell(tr, s.id);
  cell(tr, s.serverType);
  cell(tr, s.port ? `${s.host}:${s.port}` : s.host);
  cell(tr, s.pid, 'num');
  cell(tr, s.state, 'state');
  cell(tr, fmtUptime(s.uptime), 'num');
  cell(tr, s.cpu, 'num');
  cell(tr, fmtMb(s.rss), 'num');
  cell(tr, s.connections, 'num');
  cell(tr, s.restarts, 'num');
  const td = cell(tr, '', 'actions act');
  if (s.serverType !== 'master' && session && session.mayAct) {
    for (const action of ['stop', 'restart', 'kill']) {
      const b = document.createElement('button');
      b.textContent = action;
      b.dataset.action = action;
      b.dataset.server = s.id;
      td.appendChild(b);
    }
  }
  return tr;
}

function statRow(first) {
  return (r) => {
    const tr = document.createElement('tr');
    for (const v of first(r)) cell(tr, v);
    for (const k of ['count', 'errors']) cell(tr, r[k], 'num');
    for (const k of (r.route !== undefined ? ['min', 'avg', 'max', 'p99'] : ['avg', 'max', 'p99'])) cell(tr, r[k], 'num');
    return tr;
  };
}

const pollers = {
  async cluster() {
    const data = await getJson('/api/cluster');
    $('#master-name').textContent = `${data.master.id} (${data.master.env})`;
    if (!$('#add-host').value) $('#add-host').value = data.master.host;
    fillTable('servers', data.servers, renderServer);
    document.body.dataset.servers = data.servers.map((s) => `${s.id}:${s.state}`).join(' ');
  },
  async routes() {
    const data = await getJson('/api/routes');
    fillTable('routes', data.routes, statRow((r) => [r.server, r.route]));
  },
  async rpc() {
    const data = await getJson('/api/rpc');
    fillTable('rpc', data.calls, statRow((r) => [r.server, r.targetType, r.target, r.method]));
  },
  async users() {
    const data = await getJson('/api/users');
    $('#users-total').textContent = `${data.total} users online` +
      (data.total > data.users.length ? ` (showing ${data.users.length})` : '');
    fillTable('users', data.users, (u) => {
      const tr = document.createElement('tr');
      tr.dataset.uid = u.uid;
      cell(tr, u.uid); cell(tr, u.frontend); cell(tr, u.address); cell(tr, fmtTime(u.loginTime));
      return tr;
    });
  },
  async logs() {
    const data = await getJson('/api/logs?lines=40');
    const box = document.createElement('div');
    box.id = 'logs';
    for (const [server, lines] of Object.entries(data.logs)) {
      const h = document.createElement('h3');
      h.textContent = server;
      const pre = document.createElement('pre');
      pre.dataset.server = server;
      pre.textContent = lines.join('\n');
      box.append(h, pre);
    }
    $('#logs').replaceWith(box);
  },
};

async function poll() {
  clearTimeout(timer);
  const tab = document.body.dataset.tab;
  try {
    await pollers.cluster();
    if (tab !== 'cluster') await pollers[tab]();
    document.body.dataset.polled = String(Date.now());
  } catch (e) {
    show(`cannot reach the master: ${e.message}`, true);
  }
  timer = setTimeout(poll, POLL_MS);
}

async function act(action, server, record) {
  show(`${action} ${server || record.serverType}: working...`);
  const { status, answer } = await post('/api/action', { action, server, record });
  if (status === 200) show(`${action} ${server || (answer.result && answer.result.map((r) => r.id).join(', '))}: done`);
  else show(`${action} refused: ${answer.error || `HTTP ${status}`}`, true);
  poll();
}

document.addEventListener('click', (event) => {
  const b = event.target.closest('button');
  if (!b) return;
  if (b.classList.contains('tab')) {
    document.body.dataset.tab = b.dataset.tab;
    poll();
  } else if (b.dataset.action) {
    if (window.confirm(`${b.dataset.action} ${b.dataset.server}?`)) act(b.dataset.action, b.dataset.server);
  } else if (b.id === 'logout') {
    post('/logout', {}).finally(() => { window.location.href = '/login'; });
  }
});

document.addEventListener('submit', (event) => {
  if (event.target.id !== 'add-form') return;
  event.preventDefault();
  const record = { serverType: $('#add-type').value.trim(), host: $('#add-host').value.trim(),
    port: Number($('#add-port').value || 0) };
  if ($('#add-id').value.trim()) record.id = $('#add-id').value.trim();
  if ($('#add-frontend').checked) { record.frontend = true; record.clientPort = Number($('#add-client-port').value || 0); }
  act('add', null, record);
});

(async () => {
  session = await getJson('/api/session');
  document.body.dataset.mayAct = String(session.mayAct);
  $('#who').textContent = `${session.username} (${session.mayAct ? 'operator' : 'watch only'})`;
  poll();
})();
