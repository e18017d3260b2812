// The chat page's codec against docs/protocol.md: section 9 vectors and the section 7 protobuf example,
// byte for byte. Run: node --test tests/js/
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Message, Package, Protobuf, decodeMessage, decodePackages, encodeMessage, encodePackage,
  parseProto, strdecode, strencode,
} from '../../zpomelo/web/pomelo-protocol.mjs';

const hex = (text) => Uint8Array.from(text.trim().split(/\s+/).map((h) => parseInt(h, 16)));
const toHex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
const json = (obj) => strencode(JSON.stringify(obj));
const sameBytes = (actual, expected) => assert.equal(toHex(actual), toHex(expected));

const REQUEST_STRING_ROUTE = hex(`04 00 00 2a 00 01 1c 63 6f 6e 6e 65 63 74 6f 72 2e 65 6e 74 72 79
  48 61 6e 64 6c 65 72 2e 65 6e 74 72 79 7b 22 75 69 64 22 3a 22 61 22 7d`);
const REQUEST_DICT_ROUTE = hex('04 00 00 0f 01 01 00 08 7b 22 75 69 64 22 3a 22 61 22 7d');
const ERROR_RESPONSE = hex('04 00 00 0e 04 03 7b 22 63 6f 64 65 22 3a 35 30 30 7d');
const PUSH_ON_CHAT = hex('04 00 00 14 06 06 6f 6e 43 68 61 74 7b 22 6d 73 67 22 3a 22 68 69 22 7d');
const PUSH_DICT_PROTOBUF = hex('04 00 00 0a 07 00 0d 0a 05 68 65 6c 6c 6f');
const KICK = hex('05 00 00 11 7b 22 72 65 61 73 6f 6e 22 3a 22 6b 69 63 6b 22 7d');
const HANDSHAKE_ERROR = hex('01 00 00 0c 7b 22 63 6f 64 65 22 3a 35 30 30 7d');

test('request with a string route', () => {
  const message = encodeMessage(1, Message.REQUEST, 'connector.entryHandler.entry', json({ uid: 'a' }));
  sameBytes(encodePackage(Package.DATA, message), REQUEST_STRING_ROUTE);
});

test('request with dictionary code 8', () => {
  const message = encodeMessage(1, Message.REQUEST, 8, json({ uid: 'a' }));
  sameBytes(encodePackage(Package.DATA, message), REQUEST_DICT_ROUTE);
});

test('requests decode back to what was encoded', () => {
  const [pkg] = decodePackages(REQUEST_STRING_ROUTE);
  const message = decodeMessage(pkg.body);
  assert.equal(message.type, Message.REQUEST);
  assert.equal(message.id, 1);
  assert.equal(message.route, 'connector.entryHandler.entry');
  assert.equal(message.compressRoute, false);
  assert.deepEqual(JSON.parse(strdecode(message.body)), { uid: 'a' });

  const dict = decodeMessage(decodePackages(REQUEST_DICT_ROUTE)[0].body);
  assert.equal(dict.route, 8);
  assert.equal(dict.compressRoute, true);
});

test('error response id 3', () => {
  sameBytes(encodePackage(Package.DATA, encodeMessage(3, Message.RESPONSE, null, json({ code: 500 }))),
    ERROR_RESPONSE);
  const [pkg] = decodePackages(ERROR_RESPONSE);
  assert.equal(pkg.type, Package.DATA);
  const message = decodeMessage(pkg.body);
  assert.equal(message.type, Message.RESPONSE);
  assert.equal(message.id, 3);
  assert.equal(message.route, null);
  assert.deepEqual(JSON.parse(strdecode(message.body)), { code: 500 });
});

test('push onChat with a string route', () => {
  sameBytes(encodePackage(Package.DATA, encodeMessage(0, Message.PUSH, 'onChat', json({ msg: 'hi' }))),
    PUSH_ON_CHAT);
  const message = decodeMessage(decodePackages(PUSH_ON_CHAT)[0].body);
  assert.equal(message.type, Message.PUSH);
  assert.equal(message.route, 'onChat');
  assert.deepEqual(JSON.parse(strdecode(message.body)), { msg: 'hi' });
});

test('push with dictionary code 13 and a protobuf body', () => {
  const protobuf = new Protobuf({ decoderProtos: { onChat: { 'required string msg': 1 } } });
  const message = decodeMessage(decodePackages(PUSH_DICT_PROTOBUF)[0].body);
  assert.equal(message.type, Message.PUSH);
  assert.equal(message.route, 13);
  assert.deepEqual(protobuf.decode('onChat', message.body), { msg: 'hello' });

  const encoder = new Protobuf({ encoderProtos: { onChat: { 'required string msg': 1 } } });
  const body = encoder.encode('onChat', { msg: 'hello' });
  sameBytes(encodePackage(Package.DATA, encodeMessage(0, Message.PUSH, 13, body)), PUSH_DICT_PROTOBUF);
});

test('handshake ACK, heartbeat, handshake reply, handshake error and kick packages', () => {
  sameBytes(encodePackage(Package.HANDSHAKE_ACK), hex('02 00 00 00'));
  sameBytes(encodePackage(Package.HEARTBEAT), hex('03 00 00 00'));

  const reply = '{"code":200,"sys":{"heartbeat":3}}';
  const replyPackage = encodePackage(Package.HANDSHAKE, strencode(reply));
  sameBytes(replyPackage.subarray(0, 4), hex('01 00 00 22'));
  assert.equal(strdecode(decodePackages(replyPackage)[0].body), reply);

  sameBytes(encodePackage(Package.HANDSHAKE, json({ code: 500 })), HANDSHAKE_ERROR);
  const [kick] = decodePackages(KICK);
  assert.equal(kick.type, Package.KICK);
  assert.deepEqual(JSON.parse(strdecode(kick.body)), { reason: 'kick' });
});

test('several packages in one WebSocket message', () => {
  const joined = new Uint8Array([...hex('03 00 00 00'), ...PUSH_ON_CHAT, ...KICK]);
  assert.deepEqual(decodePackages(joined).map((p) => p.type), [Package.HEARTBEAT, Package.DATA, Package.KICK]);
});

test('message ids as base-128 varints, low group first', () => {
  const cases = [
    [1, '01'], [127, '7f'], [128, '80 01'], [300, 'ac 02'], [16384, '80 80 01'],
    [2 ** 31 - 1, 'ff ff ff ff 07'],
  ];
  for (const [id, bytes] of cases) {
    const encoded = encodeMessage(id, Message.RESPONSE, null, new Uint8Array(0));
    sameBytes(encoded, new Uint8Array([0x04, ...hex(bytes)]));
    assert.equal(decodeMessage(encoded).id, id);
  }
});

test('notify carries a route but no id', () => {
  sameBytes(encodeMessage(0, Message.NOTIFY, 'a.b.c', new Uint8Array(0)), hex('02 05 61 2e 62 2e 63'));
  sameBytes(encodeMessage(0, Message.NOTIFY, 0x0102, new Uint8Array(0)), hex('03 01 02'));
});

test('section 7: pomelo-protobuf example byte for byte', () => {
  const protos = {
    test: { 'required string name': 1, 'required sInt32 n': 2, 'repeated uInt32 xs': 3 },
  };
  const protobuf = new Protobuf({ encoderProtos: protos, decoderProtos: protos });
  const bytes = protobuf.encode('test', { name: 'ab', n: -3, xs: [1, 300] });
  sameBytes(bytes, hex('0a 02 61 62 10 05 18 02 01 ac 02'));
  assert.deepEqual(protobuf.decode('test', bytes), { name: 'ab', n: -3, xs: [1, 300] });
});

test('int32 is zigzag-encoded like sInt32', () => {
  const protos = { t: { 'required int32 a': 1, 'required sInt32 b': 2 } };
  const protobuf = new Protobuf({ encoderProtos: protos, decoderProtos: protos });
  const bytes = protobuf.encode('t', { a: -1, b: 1 });
  sameBytes(bytes, hex('08 01 10 02'));
  assert.deepEqual(protobuf.decode('t', bytes), { a: -1, b: 1 });
});

test('floats and doubles are little-endian; nested and repeated messages round-trip', () => {
  const protos = {
    t: {
      'required float f': 1,
      'optional double d': 2,
      'message Item': { 'required string id': 1, 'optional uInt32 count': 2 },
      'repeated Item items': 3,
      'repeated string tags': 4,
      'optional Item best': 5,
    },
  };
  const protobuf = new Protobuf({ encoderProtos: protos, decoderProtos: protos });
  const msg = {
    f: 1.5,
    d: -0.25,
    items: [{ id: 'x', count: 2 }, { id: 'é' }],
    tags: ['a', 'bc'],
    best: { id: 'y', count: 0 },
  };
  const bytes = protobuf.encode('t', msg);
  sameBytes(bytes.subarray(0, 5), hex('0d 00 00 c0 3f'));
  sameBytes(bytes.subarray(5, 14), hex('11 00 00 00 00 00 00 d0 bf'));
  assert.deepEqual(protobuf.decode('t', bytes), msg);
});

test('protos already parsed (as a Pomelo server sends them) work the same', () => {
  const source = { 'required string user': 1 };
  const parsed = parseProto(source);
  assert.deepEqual(parsed.user, { option: 'required', type: 'string', tag: 1 });
  assert.equal(parsed.__tags[1], 'user');
  const viaParsed = new Protobuf({ encoderProtos: { onAdd: parsed }, decoderProtos: { onAdd: parsed } });
  const viaSource = new Protobuf({ encoderProtos: { onAdd: source } });
  sameBytes(viaParsed.encode('onAdd', { user: 'bob' }), viaSource.encode('onAdd', { user: 'bob' }));
  assert.deepEqual(viaParsed.decode('onAdd', hex('0a 03 62 6f 62')), { user: 'bob' });
});

test('the chat protos encode the requests the page sends', () => {
  const clientProtos = {
    'chat.chatHandler.send': {
      'required string rid': 1, 'required string content': 2,
      'required string from': 3, 'required string target': 4,
    },
  };
  const protobuf = new Protobuf({ encoderProtos: clientProtos, decoderProtos: clientProtos });
  const msg = { rid: 'r', content: 'hi', from: 'a', target: '*' };
  const bytes = protobuf.encode('chat.chatHandler.send', msg);
  sameBytes(bytes, hex('0a 01 72 12 02 68 69 1a 01 61 22 01 2a'));
  assert.deepEqual(protobuf.decode('chat.chatHandler.send', bytes), msg);
});

test('protobuf errors name the field', () => {
  const protobuf = new Protobuf({ encoderProtos: { t: { 'required string name': 1 } } });
  assert.throws(() => protobuf.encode('t', {}), /"t\.name" is required/);
  assert.throws(() => protobuf.encode('nope', {}), /no protobuf proto for route "nope"/);
  assert.throws(() => parseProto({ 'required name': 1 }), /bad proto field/);
});

test('protobuf decoding skips unknown tags and rejects truncated bodies', () => {
  const protobuf = new Protobuf({ decoderProtos: { t: { 'required string name': 1 } } });
  assert.deepEqual(protobuf.decode('t', hex('10 05 0a 01 61')), { name: 'a' });
  assert.throws(() => protobuf.decode('t', hex('0a 05 61')), /truncated/);
});

test('bad packages and messages are rejected with a reason', () => {
  assert.throws(() => decodePackages(hex('09 00 00 00')), /unknown package type 9/);
  assert.throws(() => decodePackages(hex('04 00 00 05 00')), /announces 5 bytes/);
  assert.throws(() => decodePackages(hex('04 00')), /truncated package header/);
  assert.throws(() => decodeMessage(hex('00 80')), /truncated message id/);
  assert.throws(() => decodeMessage(hex('06 09 61')), /truncated route/);
  assert.throws(() => decodeMessage(hex('16 00')), /gzip/);
  assert.throws(() => encodeMessage(1, Message.REQUEST, 'x'.repeat(256)), /longer than 255 bytes/);
});
