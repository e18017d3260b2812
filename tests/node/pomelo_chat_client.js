// The chat example driven by Pomelo's own client codecs, as chatofpomelo's web client uses them:
// npm pomelo-protocol (packages, messages) and pomelo-protobuf (bodies), over `ws`.
// Usage: node pomelo_chat_client.js <gatePort>; prints one JSON line, exit 0 on success.
'use strict';
const WebSocket = require('ws');
const Protocol = require('pomelo-protocol');
const Protobuf = require('pomelo-protobuf');
const { Package, Message } = Protocol;

function fail(why) {
  console.log(JSON.stringify({ ok: false, error: String(why) }));
  process.exit(1);
}
setTimeout(() => fail('timed out'), 15000);

// One Pomelo connection, following pomelo-jsclient-websocket's logic.
class PomeloClient {
  constructor(port, name) {
    this.name = name;
    this.ws = new WebSocket('ws://127.0.0.1:' + port + '/');
    this.ws.binaryType = 'nodebuffer';
    this.nextId = 1;
    this.callbacks = {};
    this.routes = {};
    this.pushes = [];
    this.waiters = [];
    this.ready = new Promise((resolve, reject) => { this._ready = resolve; this._fail = reject; });
    this.ws.on('open', () => this.send(Package.TYPE_HANDSHAKE, Protocol.strencode(JSON.stringify({
      sys: { type: 'js-websocket', version: '0.0.1' }, user: {} }))));
    this.ws.on('message', (data) => this.onData(data));
    this.ws.on('error', (err) => this._fail(err));
  }
  send(type, body) { this.ws.send(Package.encode(type, body)); }
  onData(data) {
    let pkgs = Package.decode(data);
    if (!Array.isArray(pkgs)) pkgs = [pkgs];
    for (const pkg of pkgs) {
      if (pkg.type === Package.TYPE_HANDSHAKE) {
        const res = JSON.parse(Protocol.strdecode(pkg.body));
        if (res.code !== 200) return this._fail(new Error('handshake ' + res.code));
        const sys = res.sys || {};
        this.dict = sys.dict || {};
        this.abbrs = {};
        for (const route in this.dict) this.abbrs[this.dict[route]] = route;
        this.protos = sys.protos || { server: {}, client: {} };
        Protobuf.init({ encoderProtos: this.protos.client, decoderProtos: this.protos.server });
        this.send(Package.TYPE_HANDSHAKE_ACK);
        this._ready(sys);
      } else if (pkg.type === Package.TYPE_DATA) {
        const msg = Message.decode(pkg.body);
        if (msg.id) {
          const route = this.routes[msg.id];
          delete this.routes[msg.id];
          const body = this.decodeBody(route, msg.body);
          this.callbacks[msg.id](body);
          delete this.callbacks[msg.id];
        } else {
          const route = msg.compressRoute ? this.abbrs[msg.route] : msg.route;
          this.pushes.push({ route, body: this.decodeBody(route, msg.body) });
          this.waiters.forEach((w) => w());
        }
      } else if (pkg.type === Package.TYPE_KICK) {
        this._fail(new Error('kicked'));
      }
    }
  }
  // Pomelo's client: Protobuf.init made the decoder global, so re-init before each use
  decodeBody(route, body) {
    if (this.protos.server[route]) {
      Protobuf.init({ encoderProtos: this.protos.client, decoderProtos: this.protos.server });
      return Protobuf.decode(route, body);
    }
    return JSON.parse(Protocol.strdecode(body));
  }
  request(route, msg) {
    const id = this.nextId++;
    let body;
    if (this.protos.client[route]) {
      Protobuf.init({ encoderProtos: this.protos.client, decoderProtos: this.protos.server });
      body = Protobuf.encode(route, msg);
    } else {
      body = Protocol.strencode(JSON.stringify(msg));
    }
    const code = this.dict[route];
    this.routes[id] = route;
    this.send(Package.TYPE_DATA, Message.encode(id, Message.TYPE_REQUEST, code ? 1 : 0, code || route, body));
    return new Promise((resolve) => { this.callbacks[id] = resolve; });
  }
  waitPush(route) {
    return new Promise((resolve) => {
      const check = () => {
        const i = this.pushes.findIndex((p) => p.route === route);
        if (i >= 0) { resolve(this.pushes.splice(i, 1)[0].body); return true; }
        return false;
      };
      if (!check()) this.waiters.push(check);
    });
  }
  close() { this.ws.close(); }
}

async function enter(gatePort, username, rid) {
  const gate = new PomeloClient(gatePort, 'gate-' + username);
  await gate.ready;
  const entry = await gate.request('gate.gateHandler.queryEntry', { uid: username });
  gate.close();
  if (entry.code !== 200) fail('queryEntry ' + JSON.stringify(entry));
  const conn = new PomeloClient(entry.port, username);
  const sys = await conn.ready;
  const users = await conn.request('connector.entryHandler.enter', { username, rid });
  return { conn, entry, sys, users };
}

(async () => {
  const gatePort = Number(process.argv[2]);
  const alice = await enter(gatePort, 'alice', 'node-room');
  const bob = await enter(gatePort, 'bob', 'node-room');
  const added = await alice.conn.waitPush('onAdd');
  const sent = await bob.conn.request('chat.chatHandler.send',
    { rid: 'node-room', content: 'hello from pomelo-protobuf', from: 'bob', target: '*' });
  const chat = await alice.conn.waitPush('onChat');
  bob.conn.close();
  const left = await alice.conn.waitPush('onLeave');
  alice.conn.close();
  console.log(JSON.stringify({ ok: true, results: {
    useDict: !!alice.sys.useDict, useProto: !!alice.sys.useProto, heartbeat: alice.sys.heartbeat,
    aliceUsers: alice.users, bobUsers: bob.users, added, sent, chat, left } }));
  process.exit(0);
})().catch(fail);
