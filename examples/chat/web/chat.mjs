// The chat page: ask the gate for a connector, enter a room there, then chat.
// Talks the routes of Pomelo's chatofpomelo-websocket, so the same servers serve both clients.
import { PomeloClient } from './pomelo-client.mjs';
import { serverAddress } from './server-address.mjs';

const EVERYONE = '*';
const DEFAULT_GATE_PORT = 3014;
const NAME_PATTERN = /^[a-zA-Z0-9_\u4e00-\u9fa5]{1,20}$/; // chatofpomelo's rule
const ERRORS = {
  noServer: 'There is no server to log in to; please wait a moment and try again.',
  badName: 'Name and room: 1 to 20 letters, digits or "_".',
  nameTaken: 'That name is already in this room; please pick another.',
  disconnected: 'The connection to the server was lost; please enter again.',
  reconnecting: 'Connection lost; reconnecting...',
};

const $ = (id) => document.getElementById(id);
const ui = {
  body: document.body,
  error: $('error'),
  whoami: $('whoami'),
  loginView: $('login-view'),
  username: $('username'),
  room: $('room'),
  login: $('login'),
  chatView: $('chat-view'),
  users: $('users'),
  target: $('target'),
  messages: $('messages'),
  message: $('message'),
  send: $('send'),
  composer: document.querySelector('form.composer'),
};

// resume: a lost link is reconnected and the session (room, missed messages) comes back
const chat = new PomeloClient({ resume: true });
let me = null; // {username, rid} once in a room

// ---------------------------------------------------------------------------------- views

function showError(text) {
  ui.error.textContent = text || '';
}

function showLogin() {
  me = null;
  ui.body.dataset.state = 'login';
  ui.chatView.hidden = true;
  ui.loginView.hidden = false;
  ui.login.disabled = false;
  ui.whoami.textContent = '';
  ui.username.focus();
}

function showChat(users) {
  ui.body.dataset.state = 'chat';
  ui.loginView.hidden = true;
  ui.chatView.hidden = false;
  ui.whoami.textContent = `${me.username} in room ${me.rid}`;
  ui.users.replaceChildren();
  ui.target.replaceChildren(new Option('Everyone', EVERYONE));
  ui.messages.replaceChildren();
  for (const user of users) addUser(user);
  ui.message.focus();
}

function userItem(user) {
  return [...ui.users.children].find((li) => li.dataset.user === user);
}

function addUser(user) {
  if (userItem(user)) return;
  const li = document.createElement('li');
  li.dataset.user = user;
  li.textContent = user;
  if (user === me.username) li.classList.add('me');
  ui.users.append(li);
  if (user !== me.username) ui.target.append(new Option(user, user));
}

function removeUser(user) {
  const li = userItem(user);
  if (li) li.remove();
  const option = [...ui.target.options].find((o) => o.value === user);
  if (option) {
    if (option.selected) selectTarget(EVERYONE);
    option.remove();
  }
}

function selectTarget(user) {
  ui.target.value = user;
  for (const li of ui.users.children) li.classList.toggle('selected', li.dataset.user === user);
}

function addNotice(text) {
  const li = document.createElement('li');
  li.className = 'notice';
  li.textContent = text;
  appendMessage(li);
}

function addChat(from, target, text) {
  const li = document.createElement('li');
  li.className = 'chat';
  if (from === me.username) li.classList.add('mine');
  if (target !== EVERYONE) li.classList.add('private');
  li.dataset.from = from;
  li.dataset.target = target;
  const meta = document.createElement('span');
  meta.className = 'meta';
  const time = new Date().toTimeString().slice(0, 5);
  meta.textContent = `${time} ${from} to ${target === EVERYONE ? 'everyone' : target}`;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(meta, body);
  appendMessage(li);
}

function appendMessage(li) {
  ui.messages.append(li);
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

// ---------------------------------------------------------------------------------- server

/** Where the gate listens: ?gate=host:port, else what the page's own server says, else :3014. */
const gateAddress = () => serverAddress('gate', 'gate.json', DEFAULT_GATE_PORT);

async function queryConnector(uid) {
  const gate = new PomeloClient();
  try {
    await gate.connect(await gateAddress());
    const reply = await gate.request('gate.gateHandler.queryEntry', { uid });
    if (reply.code !== 200) return null;
    return { host: reply.host, port: reply.port };
  } finally {
    gate.disconnect();
  }
}

async function enter(username, rid) {
  const connector = await queryConnector(username);
  if (!connector) {
    showError(ERRORS.noServer);
    return;
  }
  await chat.connect(connector);
  const reply = await chat.request('connector.entryHandler.enter', { username, rid });
  if (reply.error) {
    chat.disconnect();
    showError(reply.error === true ? ERRORS.nameTaken : reply.error);
    return;
  }
  me = { username, rid };
  showError('');
  showChat(reply.users || []);
}

async function send() {
  const content = ui.message.value.trim();
  if (!content || !me) return;
  const target = ui.target.value || EVERYONE;
  ui.message.value = '';
  const reply = await chat.request('chat.chatHandler.send', {
    rid: me.rid, content, from: me.username, target,
  });
  if (reply.code && reply.code !== 200) {
    showError(reply.error || `the message was not sent (code ${reply.code})`);
    return;
  }
  showError('');
  // A private message is pushed to its target only: show our own copy here.
  if (target !== EVERYONE && target !== me.username) addChat(me.username, target, content);
}

// ---------------------------------------------------------------------------------- wiring

chat.on('onChat', (data) => addChat(data.from, data.target, data.msg));
chat.on('onAdd', (data) => {
  if (!me) return;
  addUser(data.user);
  addNotice(`${data.user} joined`);
});
chat.on('onLeave', (data) => {
  if (!me) return;
  removeUser(data.user);
  addNotice(`${data.user} left`);
});
chat.on('kick', (data) => showError(`Kicked by the server: ${data.reason || 'no reason given'}`));
chat.on('drop', () => showError(ERRORS.reconnecting));
chat.on('resumed', () => showError(''));
chat.on('sessionLost', () => {
  // Came back too late (or to a server that forgot us): enter the room again as a new session.
  const was = me;
  if (!was) return;
  chat.request('connector.entryHandler.enter', { username: was.username, rid: was.rid })
    .then((reply) => {
      if (reply.error) {
        showError(ERRORS.disconnected);
        chat.disconnect();
        return;
      }
      showError('');
      showChat(reply.users || []);
    })
    .catch(() => chat.disconnect());
});
chat.on('disconnect', () => {
  if (me) {
    if (!ui.error.textContent) showError(ERRORS.disconnected);
    showLogin();
  }
});

ui.loginView.addEventListener('submit', async (event) => {
  event.preventDefault();
  const username = ui.username.value.trim();
  const rid = ui.room.value.trim();
  if (!NAME_PATTERN.test(username) || !NAME_PATTERN.test(rid)) {
    showError(ERRORS.badName);
    return;
  }
  ui.login.disabled = true;
  try {
    await enter(username, rid);
  } catch (err) {
    chat.disconnect();
    showError(`Could not enter: ${err.message}`);
  } finally {
    if (!me) ui.login.disabled = false;
  }
});

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  send().catch((err) => showError(`Could not send: ${err.message}`));
});

ui.users.addEventListener('click', (event) => {
  const li = event.target.closest('li');
  if (!li || (me && li.dataset.user === me.username)) return;
  selectTarget(li.classList.contains('selected') ? EVERYONE : li.dataset.user);
});

ui.target.addEventListener('change', () => selectTarget(ui.target.value));

showLogin();
