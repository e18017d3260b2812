// The chat page's PomeloClient against a scripted fake WebSocket: handshake, dictionary routes,
// protobuf bodies, heartbeats, kicks and closes. Run: node --test tests/js/
import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';

import { PomeloClient } from '../../zpomelo/web/pomelo-client.mjs';
import {
  Message, Package, Protobuf, decodeMessage, decodePackages, encodeMessage, encodePackage,
  strdecode, strencode,
} from '../../zpomelo/web/pomelo-protocol.mjs';

const SERVER_PROTOS = { onChat: { 'required string msg': 1, 'required string from': 2, 'required string target': 3 } };
const CLIENT_PROTOS = { 'connector.entryHandler.enter': { 'required string username': 1, 'required string rid': 2 } };
const DICT = { 'connector.entryHandler.enter': 1, 'chat.chatHandler.send': 2, onChat: 3 };

class FakeSocket {
  static last = null;

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.last = this;
  }

  send(bytes) {
    this.sent.push(...decodePackages(bytes));
  }

  close() {
    this.readyState = 3;
  }

  // --- the server's side of the script
  open() {
    this.readyState = 1;
    this.onopen();
  }

  deliver(...packages) {
    const joined = new Uint8Array(packages.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const p of packages) {
      joined.set(p, offset);
      offset += p.length;
    }
    this.onmessage({ data: joined.buffer });
  }

  serverClose() {
    this.readyState = 3;
    this.onclose({ code: 1006, reason: '' });
  }

  takeSent() {
    const sent = this.sent;
    this.sent = [];
    return sent;
  }
}

const handshakeReply = (reply) => encodePackage(Package.HANDSHAKE, strencode(JSON.stringify(reply)));
const OK_REPLY = {
  code: 200,
  sys: { heartbeat: 3, useDict: true, routeToCode: DICT, useProto: true, protos: { server: SERVER_PROTOS, client: CLIENT_PROTOS, version: 'v1' } },
};

async function connected(reply = OK_REPLY) {
  const client = new PomeloClient();
  const connecting = client.connect({ host: '127.0.0.1', port: 3050 });
  const socket = FakeSocket.last;
  socket.open();
  socket.deliver(handshakeReply(reply));
  await connecting;
  return { client, socket };
}

beforeEach(() => {
  globalThis.WebSocket = FakeSocket;
});

afterEach(() => {
  mock.timers.reset();
  delete globalThis.WebSocket;
});

test('handshake: sends the client sys, answers with an ACK', async () => {
  const client = new PomeloClient({ handshakeUser: { name: 'x' } });
  const connecting = client.connect({ host: 'example.test', port: 3014 });
  const socket = FakeSocket.last;
  assert.equal(socket.url, 'ws://example.test:3014/');
  socket.open();
  const [hello] = socket.takeSent();
  assert.equal(hello.type, Package.HANDSHAKE);
  const body = JSON.parse(strdecode(hello.body));
  assert.equal(body.sys.type, 'js-websocket');
  assert.deepEqual(body.user, { name: 'x' });

  socket.deliver(handshakeReply({ code: 200, sys: {}, user: { hello: 1 } }));
  assert.deepEqual(await connecting, { hello: 1 });
  assert.deepEqual(socket.takeSent().map((p) => p.type), [Package.HANDSHAKE_ACK]);
});

test('handshake code 501 and 500 reject the connect with a reason', async () => {
  for (const [code, pattern] of [[501, /client version/], [500, /code 500/]]) {
    const client = new PomeloClient();
    const connecting = client.connect({ host: 'h', port: 1 });
    FakeSocket.last.open();
    FakeSocket.last.deliver(handshakeReply({ code }));
    await assert.rejects(connecting, pattern);
    assert.equal(client.connected, false);
  }
});

test('a socket closed before the handshake rejects the connect', async () => {
  const client = new PomeloClient();
  const connecting = client.connect({ host: 'h', port: 1 });
  FakeSocket.last.serverClose();
  await assert.rejects(connecting, /closed the connection during the handshake/);
});

test('requests use the dictionary code and protobuf; responses resolve by id', async () => {
  const { client, socket } = await connected();
  socket.takeSent();
  const replied = client.request('connector.entryHandler.enter', { username: 'ann', rid: 'r1' });
  const [pkg] = socket.takeSent();
  assert.equal(pkg.type, Package.DATA);
  const message = decodeMessage(pkg.body);
  assert.equal(message.type, Message.REQUEST);
  assert.equal(message.id, 1);
  assert.equal(message.route, 1);
  const protobuf = new Protobuf({ decoderProtos: CLIENT_PROTOS });
  assert.deepEqual(protobuf.decode('connector.entryHandler.enter', message.body), { username: 'ann', rid: 'r1' });

  socket.deliver(encodePackage(Package.DATA,
    encodeMessage(1, Message.RESPONSE, null, strencode(JSON.stringify({ users: ['ann'] })))));
  assert.deepEqual(await replied, { users: ['ann'] });
});

test('routes outside the dictionary go as strings with JSON bodies; notify has no id', async () => {
  const { client, socket } = await connected();
  socket.takeSent();
  client.notify('area.playerHandler.move', { x: 1 });
  const message = decodeMessage(socket.takeSent()[0].body);
  assert.equal(message.type, Message.NOTIFY);
  assert.equal(message.id, 0);
  assert.equal(message.route, 'area.playerHandler.move');
  assert.deepEqual(JSON.parse(strdecode(message.body)), { x: 1 });
});

test('pushes: dictionary code and protobuf body reach on(route) listeners', async () => {
  const { client, socket } = await connected();
  const seen = [];
  client.on('onChat', (msg) => seen.push(msg));
  client.on('onAdd', (msg) => seen.push(msg));
  const protobuf = new Protobuf({ encoderProtos: SERVER_PROTOS });
  const chat = protobuf.encode('onChat', { msg: 'hi', from: 'bob', target: '*' });
  socket.deliver(
    encodePackage(Package.DATA, encodeMessage(0, Message.PUSH, 3, chat)),
    encodePackage(Package.DATA, encodeMessage(0, Message.PUSH, 'onAdd', strencode('{"user":"cy"}'))),
  );
  assert.deepEqual(seen, [{ msg: 'hi', from: 'bob', target: '*' }, { user: 'cy' }]);
});

test('heartbeats: answer after the interval, give up when the server stays silent', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  const { client, socket } = await connected();
  let timedOut = false;
  client.on('heartbeatTimeout', () => { timedOut = true; });
  socket.takeSent();

  socket.deliver(encodePackage(Package.HEARTBEAT));
  mock.timers.tick(2999);
  assert.deepEqual(socket.takeSent(), []);
  mock.timers.tick(1);
  assert.deepEqual(socket.takeSent().map((p) => p.type), [Package.HEARTBEAT]);

  socket.deliver(encodePackage(Package.HEARTBEAT)); // the server's answer clears the deadline
  mock.timers.tick(3000);
  assert.deepEqual(socket.takeSent().map((p) => p.type), [Package.HEARTBEAT]);
  mock.timers.tick(5999);
  assert.equal(timedOut, false);
  mock.timers.tick(1);
  assert.equal(timedOut, true);
  assert.equal(client.connected, false);
});

test('kick is reported; a server close rejects pending requests and emits disconnect', async () => {
  const { client, socket } = await connected();
  const events = [];
  client.on('kick', (reason) => events.push(['kick', reason]));
  client.on('disconnect', () => events.push(['disconnect']));
  const pending = client.request('chat.chatHandler.send', {});
  socket.deliver(encodePackage(Package.KICK, strencode('{"reason":"kick"}')));
  socket.serverClose();
  await assert.rejects(pending, /connection closed/);
  assert.deepEqual(events, [['kick', { reason: 'kick' }], ['disconnect']]);
  assert.throws(() => client.notify('a.b.c', {}), /not connected/);
});

test('garbage from the server closes the connection instead of throwing into the page', async () => {
  const { client, socket } = await connected();
  const errors = [];
  client.on('error', (err) => errors.push(err.message));
  socket.deliver(new Uint8Array([9, 0, 0, 0]));
  assert.match(errors[0], /unknown package type 9/);
  assert.equal(client.connected, false);
});

test('resume: asks for a token, counts pushes, reconnects with them after a drop', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  const client = new PomeloClient({ resume: true });
  const events = [];
  for (const name of ['drop', 'resumed', 'sessionLost', 'disconnect']) {
    client.on(name, (arg) => events.push(name));
  }
  const seen = [];
  client.on('onRoom', (body) => seen.push(body.n));
  const connecting = client.connect({ host: 'h', port: 1 });
  let socket = FakeSocket.last;
  socket.open();
  assert.deepEqual(JSON.parse(strdecode(socket.takeSent()[0].body)).sys.resume, {});
  socket.deliver(handshakeReply({ code: 200, sys: { resume: { token: 't1', window: 5, resumed: false } } }));
  await connecting;
  const push = (n) => encodePackage(Package.DATA,
    encodeMessage(0, Message.PUSH, 'onRoom', strencode(JSON.stringify({ n }))));
  socket.deliver(push(0), push(1));
  const inFlight = client.request('x.y.z', {});
  socket.serverClose();
  await assert.rejects(inFlight, /connection lost/);
  assert.deepEqual(events, ['drop']);

  mock.timers.tick(100); // the first backoff is at most 50 ms
  socket = FakeSocket.last;
  socket.open();
  const hello = JSON.parse(strdecode(socket.takeSent()[0].body));
  assert.deepEqual(hello.sys.resume, { token: 't1', pushes: 2 });
  socket.deliver(handshakeReply({ code: 200, sys: { resume: { token: 't2', window: 5, resumed: true } } }), push(2));
  assert.deepEqual(events, ['drop', 'resumed']);
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(client.resume.pushes, 3);

  // too late: the server gives a fresh session and the count starts again
  socket.serverClose();
  mock.timers.tick(100);
  FakeSocket.last.open();
  FakeSocket.last.deliver(handshakeReply({ code: 200, sys: { resume: { token: 't3', window: 5, resumed: false, reason: 'expired' } } }));
  assert.deepEqual(events, ['drop', 'resumed', 'drop', 'sessionLost']);
  assert.equal(client.resume.pushes, 0);

  // a kick is final: no reconnect
  FakeSocket.last.deliver(encodePackage(Package.KICK, strencode('{"reason":"bye"}')));
  FakeSocket.last.serverClose();
  const sockets = FakeSocket.last;
  mock.timers.tick(5000);
  assert.equal(FakeSocket.last, sockets);
  assert.equal(events.at(-1), 'disconnect');
});
