// Drives a zpomelo frontend with Pomelo's own client codec (npm pomelo-protocol) over `ws`:
// handshake, ACK, heartbeat, a dictionary-compressed request, a string-route request and a push.
// Usage: node pomelo_protocol_client.js <port>; prints one JSON line of results, exit 0 on success.
'use strict';
const WebSocket = require('ws');
const Protocol = require('pomelo-protocol');
const { Package, Message } = Protocol;

const port = Number(process.argv[2]);
const ws = new WebSocket('ws://127.0.0.1:' + port + '/');
ws.binaryType = 'nodebuffer';
const results = { heartbeats: 0, responses: {}, pushes: [] };
let routeToCode = {};
let codeToRoute = {};
let requests = {};
let nextId = 1;
const timer = setTimeout(() => fail('timed out'), 10000);

function fail(why) {
  console.log(JSON.stringify({ ok: false, error: why, results }));
  process.exit(1);
}

function send(type, body) {
  ws.send(Package.encode(type, body));
}

function request(route, msg) {
  const id = nextId++;
  requests[id] = route;
  const code = routeToCode[route];
  const body = Protocol.strencode(JSON.stringify(msg));
  const encoded = Message.encode(id, Message.TYPE_REQUEST, code ? 1 : 0, code || route, body);
  send(Package.TYPE_DATA, encoded);
}

function maybeDone() {
  if (results.heartbeats >= 2 && Object.keys(results.responses).length === 3 && results.pushes.length === 1) {
    clearTimeout(timer);
    console.log(JSON.stringify({ ok: true, results }));
    ws.close();
    process.exit(0);
  }
}

ws.on('open', () => {
  const hs = { sys: { type: 'pomelo-protocol-test', version: '0.1.6' }, user: { name: 'node' } };
  send(Package.TYPE_HANDSHAKE, Protocol.strencode(JSON.stringify(hs)));
});

ws.on('message', (data) => {
  let pkgs = Package.decode(data);
  if (!Array.isArray(pkgs)) pkgs = [pkgs];
  for (const pkg of pkgs) {
    if (pkg.type === Package.TYPE_HANDSHAKE) {
      const reply = JSON.parse(Protocol.strdecode(pkg.body));
      if (reply.code !== 200) fail('handshake code ' + reply.code);
      results.handshake = { code: reply.code, heartbeat: reply.sys.heartbeat, user: reply.user };
      routeToCode = reply.sys.routeToCode || reply.sys.dict || {};
      codeToRoute = reply.sys.codeToRoute || {};
      send(Package.TYPE_HANDSHAKE_ACK);
      request('connector.entryHandler.echo', { hello: 'pomelo' });
      request('connector.entryHandler.login', { uid: 'node-user' });
      request('connector.entryHandler.push_me', { body: { from: 'node' } });
    } else if (pkg.type === Package.TYPE_HEARTBEAT) {
      results.heartbeats += 1;
      if (results.heartbeats === 1) send(Package.TYPE_HEARTBEAT);
    } else if (pkg.type === Package.TYPE_DATA) {
      const msg = Message.decode(pkg.body);
      const body = JSON.parse(Protocol.strdecode(msg.body));
      if (msg.type === Message.TYPE_RESPONSE) {
        results.responses[requests[msg.id]] = body;
      } else if (msg.type === Message.TYPE_PUSH) {
        const route = msg.compressRoute ? codeToRoute[msg.route] : msg.route;
        results.pushes.push({ route, compressed: !!msg.compressRoute, body });
      }
    } else if (pkg.type === Package.TYPE_KICK) {
      fail('kicked: ' + Protocol.strdecode(pkg.body));
    }
  }
  maybeDone();
});
ws.on('error', (err) => fail(String(err)));
ws.on('close', () => fail('closed by the server'));
