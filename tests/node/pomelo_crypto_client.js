// Pomelo's useCrypto exactly as its web client does it, with Pomelo's own codec (npm
// pomelo-protocol) over `ws`. The handshake carries {rsa_n: hex, rsa_e: 65537} (a number, as
// jsbn's RSAKey gives it); each request runs pomelo-client.js's sendMessage: text =
// JSON.stringify(msg), sig = RSA-SHA256(text) in hex, msg = JSON.parse(text),
// msg.__crypto__ = sig, then JSON.stringify + strencode. (jsrsasign's signString hashes the
// UTF-8 of the text, PKCS#1 v1.5, as node's crypto.sign does here.)
// Usage: node pomelo_crypto_client.js <port> [route]; prints one JSON line, exit 0 on success.
// Also: node pomelo_crypto_client.js --numbers <count>: JSON.stringify of many doubles as
// [hex of the 8 bytes, text] pairs, for the Python side's number formatting.
'use strict';
const crypto = require('crypto');

if (process.argv[2] === '--numbers') {
  const count = Number(process.argv[3]);
  const out = [];
  const buf = Buffer.alloc(8);
  const specials = [1e-7, 0.000001, 1e-6, 1e21, 1e20, 123e-20, 5e-324, 1.7976931348623157e308,
    0.1 + 0.2, -0, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 12345678901234567890, 1 / 3, 100, 1.5e300, 4.35];
  for (let i = 0; i < count; i++) {
    let x;
    if (i < specials.length) x = specials[i];
    else if (i % 3 === 0) { crypto.randomFillSync(buf); x = buf.readDoubleBE(0); }
    else if (i % 3 === 1) x = (Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 60 - 30);
    else x = Math.round(Math.random() * 10 ** Math.floor(Math.random() * 25));
    if (!Number.isFinite(x)) continue;
    buf.writeDoubleBE(x, 0);
    out.push([buf.toString('hex'), JSON.stringify(x)]);
  }
  // exit only once the pipe took it all (process.exit would cut the output at 64 KB)
  process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
  return;
}

const WebSocket = require('ws');
const Protocol = require('pomelo-protocol');
const { Package, Message } = Protocol;

const port = Number(process.argv[2]);
const route = process.argv[3] || 'connector.entryHandler.echo';
// The messages a game would send: numbers JavaScript and Python write differently, unicode,
// a lone surrogate, integer-like keys (JavaScript moves them first), nesting.
const MESSAGES = [
  { small: 1e-7, micro: 0.000001, big: 1e21, round: 1e20, third: 1 / 3 },
  { id: 12345678901234567890, over53: 2 ** 53 + 2, negZero: -0, sum: 0.1 + 0.2, tiny: 5e-324 },
  { text: 'héllo wörld 😀 \u2028 \u0007 "quoted" back\\slash \u007f', lone: '\ud800', pair: '\ud83d\ude00' },
  { b: 1, a: 2, 10: 3, 2: 4, '-1': 5, '01': 6, 4294967295: 7, 4294967294: 8, '1.5': 9 },
  { nested: [{ z: [1, 2.5, -3e-10, [true, false, null]] }, { '': '' }], deep: { x: { y: { z: 'end' } } } },
];

const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 65537 });
const jwk = publicKey.export({ format: 'jwk' });
const rsaN = Buffer.from(jwk.n, 'base64url').toString('hex');

const ws = new WebSocket('ws://127.0.0.1:' + port + '/');
ws.binaryType = 'nodebuffer';
const results = { signed: {}, responses: {} };
let nextId = 1;
const timer = setTimeout(() => fail('timed out'), 15000);

function fail(why) {
  console.log(JSON.stringify({ ok: false, error: why, results }));
  process.exit(1);
}

function sendMessage(reqId, msg) {         // pomelo-client.js's sendMessage with useCrypto on
  msg = JSON.stringify(msg);
  const sig = crypto.sign('sha256', Buffer.from(msg, 'utf8'), privateKey).toString('hex');
  results.signed[reqId] = msg;
  msg = JSON.parse(msg);
  msg['__crypto__'] = sig;
  const body = Protocol.strencode(JSON.stringify(msg));
  ws.send(Package.encode(Package.TYPE_DATA, Message.encode(reqId, Message.TYPE_REQUEST, 0, route, body)));
}

ws.on('open', () => {
  const hs = { sys: { type: 'js-websocket', version: '0.0.1', rsa: { rsa_n: rsaN, rsa_e: 65537 } }, user: {} };
  ws.send(Package.encode(Package.TYPE_HANDSHAKE, Protocol.strencode(JSON.stringify(hs))));
});

ws.on('message', (data) => {
  let pkgs = Package.decode(data);
  if (!Array.isArray(pkgs)) pkgs = [pkgs];
  for (const pkg of pkgs) {
    if (pkg.type === Package.TYPE_HANDSHAKE) {
      const reply = JSON.parse(Protocol.strdecode(pkg.body));
      if (reply.code !== 200) fail('handshake code ' + reply.code);
      ws.send(Package.encode(Package.TYPE_HANDSHAKE_ACK));
      for (const msg of MESSAGES) sendMessage(nextId++, msg);
    } else if (pkg.type === Package.TYPE_DATA) {
      const msg = Message.decode(pkg.body);
      results.responses[msg.id] = Protocol.strdecode(msg.body);
      if (Object.keys(results.responses).length === MESSAGES.length) {
        clearTimeout(timer);
        console.log(JSON.stringify({ ok: true, results }));
        process.exit(0);
      }
    } else if (pkg.type === Package.TYPE_KICK) {
      fail('kicked: ' + Protocol.strdecode(pkg.body));
    }
  }
});
ws.on('error', (err) => fail(String(err)));
ws.on('close', () => fail('closed by the server'));
