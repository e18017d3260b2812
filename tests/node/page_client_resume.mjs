// The chat page's PomeloClient (zpomelo/web/pomelo-client.mjs) with resume on, under node
// with `ws`, against a real zpomelo frontend (tests/apps/resume) reached through the test's TCP
// proxy. Driven by tests/resume/test_page_client_resume.py over stdin/stdout, one JSON per line:
//   node page_client_resume.mjs <proxy port> <count>
//   -> {"ready": sid}            logged in; the test floods the room
//   -> {"seen": 200}             the test cuts the link now
//   -> {"done": {...}}           <count> pushes read, whoami after the resume, events seen
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, 'package.json'));
const WebSocket = require('ws');
const { PomeloClient } = await import('../../zpomelo/web/pomelo-client.mjs');

const [port, count] = process.argv.slice(2).map(Number);
const ROOM = 'connector.roomHandler.';
const events = [];
const seen = [];
const client = new PomeloClient({ resume: true, WebSocketClass: WebSocket });
client.on('drop', (reason) => events.push(['drop', reason]));
client.on('resumed', () => events.push(['resumed']));
client.on('sessionLost', (reason) => events.push(['sessionLost', reason]));
client.on('disconnect', () => events.push(['disconnect']));
client.on('onRoom', (body) => {
  seen.push(body.n);
  if (seen.length === 200) console.log(JSON.stringify({ seen: 200 })); // the test cuts now
});

const deadline = setTimeout(() => {
  console.log(JSON.stringify({ error: 'timed out', seen: seen.length, events }));
  process.exit(1);
}, 40000);

await client.connect({ host: '127.0.0.1', port });
const login = await client.request(`${ROOM}login`, { uid: 'page-user', color: 'green' });
console.log(JSON.stringify({ ready: login.sid }));

const waitFor = (test) => new Promise((resolve) => {
  const poll = () => (test() ? resolve() : setTimeout(poll, 5));
  poll();
});
await waitFor(() => seen.length >= count && events.some((e) => e[0] === 'resumed'));
const whoami = await client.request(`${ROOM}whoami`);
clearTimeout(deadline);
console.log(JSON.stringify({ done: { seen, whoami, events, pushesCounted: client.resume.pushes } }));
client.disconnect();
process.exit(0);
