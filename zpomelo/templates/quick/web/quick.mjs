// The quick game's page: log in on the connector, join an area, move on its board, see the
// others' moves pushed, pick up items and give them to other players (each one transaction).
import { PomeloClient } from './pomelo-client.mjs';
import { serverAddress } from './server-address.mjs';

const DEFAULT_CLIENT_PORT = 3210;
const SIZE = 10; // the board is SIZE x SIZE squares
const NAME_PATTERN = /^[a-zA-Z0-9_]{1,20}$/;

const $ = (id) => document.getElementById(id);
const ui = {
  body: document.body, error: $('error'), whoami: $('whoami'),
  loginView: $('login-view'), uid: $('uid'), area: $('area'), join: $('join'),
  gameView: $('game-view'), board: $('board'), players: $('players'), items: $('items'),
  pickForm: $('pick-form'), pickItem: $('pick-item'),
  giveForm: $('give-form'), giveItem: $('give-item'), giveTo: $('give-to'), log: $('log'),
};

const game = new PomeloClient();
let me = null; // {uid, areaId} once in an area
const players = new Map(); // uid -> {x, y}
let items = [];

// ---------------------------------------------------------------------------------- views

function showError(text) {
  ui.error.textContent = text || '';
}

function log(text) {
  const li = document.createElement('li');
  li.textContent = text;
  ui.log.prepend(li);
}

function showLogin() {
  me = null;
  ui.body.dataset.state = 'login';
  ui.gameView.hidden = true;
  ui.loginView.hidden = false;
  ui.join.disabled = false;
  ui.whoami.textContent = '';
}

function showGame() {
  ui.body.dataset.state = 'game';
  ui.loginView.hidden = true;
  ui.gameView.hidden = false;
  ui.whoami.textContent = `${me.uid} in ${me.areaId}`;
  render();
}

function buildBoard() {
  for (let y = 0; y < SIZE; y += 1) {
    for (let x = 0; x < SIZE; x += 1) {
      const cell = document.createElement('button');
      cell.type = 'button';
      cell.dataset.x = x;
      cell.dataset.y = y;
      cell.title = `move to ${x}, ${y}`;
      ui.board.append(cell);
    }
  }
}

function render() {
  for (const cell of ui.board.children) {
    const here = [...players].filter(([, p]) => p.x === Number(cell.dataset.x) && p.y === Number(cell.dataset.y));
    cell.textContent = here.map(([uid]) => uid.slice(0, 2)).join(' ');
    cell.classList.toggle('me', here.some(([uid]) => uid === me.uid));
    cell.classList.toggle('other', here.length > 0 && !here.some(([uid]) => uid === me.uid));
  }
  ui.players.replaceChildren(...[...players].sort().map(([uid, p]) => {
    const li = document.createElement('li');
    li.dataset.uid = uid;
    li.dataset.x = p.x;
    li.dataset.y = p.y;
    li.textContent = `${uid} (${p.x}, ${p.y})`;
    if (uid === me.uid) li.classList.add('me');
    return li;
  }));
  ui.items.replaceChildren(...items.map((item) => {
    const li = document.createElement('li');
    li.textContent = item;
    return li;
  }));
  const keepItem = ui.giveItem.value;
  ui.giveItem.replaceChildren(...items.map((item) => new Option(item, item)));
  if (items.includes(keepItem)) ui.giveItem.value = keepItem;
  const keepTo = ui.giveTo.value;
  const others = [...players.keys()].filter((uid) => uid !== me.uid).sort();
  ui.giveTo.replaceChildren(...others.map((uid) => new Option(uid, uid)));
  if (others.includes(keepTo)) ui.giveTo.value = keepTo;
}

// ---------------------------------------------------------------------------------- server

/** Where the connector listens: ?connector=host:port, else what the page's server says. */
const connectorAddress = () => serverAddress('connector', 'connector.json', DEFAULT_CLIENT_PORT);

async function call(route, msg) {
  const reply = await game.request(route, msg);
  if (reply.code !== 200) throw new Error(reply.error || `${route} failed (code ${reply.code})`);
  return reply;
}

async function enter(uid, areaId) {
  await game.connect(await connectorAddress());
  const login = await call('connector.entryHandler.login', { uid });
  const joined = await call('area.areaHandler.join', { areaId });
  me = { uid, areaId };
  items = login.player.items || [];
  players.clear();
  for (const p of joined.players) players.set(p.id, { x: p.x, y: p.y });
  showError('');
  showGame();
  log(`you joined ${areaId}`);
}

async function move(x, y) {
  await call('area.areaHandler.move', { areaId: me.areaId, x, y });
  players.set(me.uid, { x, y }); // the others get an onMove push; we have the answer
  render();
}

async function pick(item) {
  items = (await call('player.playerHandler.pick', { item })).items;
  render();
}

async function give(item, to) {
  items = (await call('player.playerHandler.give', { to, item })).items;
  render();
}

// ---------------------------------------------------------------------------------- wiring

function acting(fn) {
  return (...args) => fn(...args).then(() => showError(''), (err) => showError(err.message));
}

game.on('onJoin', ({ uid }) => {
  players.set(uid, { x: 0, y: 0 });
  log(`${uid} joined`);
  render();
});
game.on('onLeave', ({ uid }) => {
  players.delete(uid);
  log(`${uid} left`);
  render();
});
game.on('onMove', ({ uid, x, y }) => {
  players.set(uid, { x, y });
  log(`${uid} moved to ${x}, ${y}`);
  render();
});
game.on('onGive', ({ from, to, item }) => {
  if (to === me.uid && from !== me.uid) items = [...items, item];
  log(`${from} gave ${item} to ${to}`);
  render();
});
game.on('kick', (data) => showError(`Kicked by the server: ${data.reason || 'no reason given'}`));
game.on('disconnect', () => {
  if (me) {
    showError('The connection to the server was lost; please join again.');
    showLogin();
  }
});

ui.loginView.addEventListener('submit', async (event) => {
  event.preventDefault();
  const uid = ui.uid.value.trim();
  const areaId = ui.area.value.trim();
  if (!NAME_PATTERN.test(uid) || !NAME_PATTERN.test(areaId)) {
    showError('Name and area: 1 to 20 letters, digits or "_".');
    return;
  }
  ui.join.disabled = true;
  try {
    await enter(uid, areaId);
  } catch (err) {
    game.disconnect();
    showError(`Could not join: ${err.message}`);
    ui.join.disabled = false;
  }
});

ui.board.addEventListener('click', (event) => {
  const cell = event.target.closest('button');
  if (cell && me) acting(move)(Number(cell.dataset.x), Number(cell.dataset.y));
});

ui.pickForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const item = ui.pickItem.value.trim();
  if (!item) return;
  ui.pickItem.value = '';
  acting(pick)(item);
});

ui.giveForm.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!ui.giveItem.value || !ui.giveTo.value) {
    showError('Pick up an item first, and wait for another player to join.');
    return;
  }
  acting(give)(ui.giveItem.value, ui.giveTo.value);
});

buildBoard();
showLogin();
