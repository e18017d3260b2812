// Regenerates pomelo_vectors.json with Pomelo's own codecs (the versions Pomelo 2.2.7 ships):
//   mkdir /tmp/v && cd /tmp/v && npm install pomelo-protobuf@0.4.0 pomelo-protocol@0.1.6
//   NODE_PATH=/tmp/v/node_modules node gen_pomelo_vectors.js > pomelo_vectors.json
// test_vectors.py checks that zpomelo encodes and decodes every vector byte for byte.
const protobuf = require('pomelo-protobuf');
const protocol = require('pomelo-protocol');
const crypto = require('crypto');

const md5 = (s) => crypto.createHash('md5').update(s).digest('base64');
const hex = (b) => Buffer.from(b).toString('hex');

const protos = {
  "area.playerHandler.move": {
    "required uInt32 entityId": 1,
    "optional sInt32 dx": 2,
    "optional int32 dy": 3,
    "repeated Point path": 4,
    "message Point": {"required float x": 1, "required double y": 2},
    "repeated string tags": 5,
    "repeated sInt32 deltas": 6,
    "repeated double weights": 7,
    "optional Shared shared": 8,
    "repeated float fs": 9,
    "optional string name": 10
  },
  "onChat": {"required string msg": 1},
  "onBig": {"required uInt32 big": 1, "required sInt32 neg": 2, "required string s": 3},
  "onNest": {"required Outer o": 1,
             "message Outer": {"required Inner i": 1, "optional uInt32 k": 2,
                               "message Inner": {"repeated uInt32 v": 1}}},
  "message Shared": {"required string who": 1, "repeated uInt32 ids": 2}
};
const parsed = protobuf.parse(protos);
protobuf.init({encoderProtos: parsed, decoderProtos: parsed});
const cases = [
  ["area.playerHandler.move", {entityId: 7, dx: -3, dy: -70000,
    path: [{x: 1.5, y: -2.25}, {x: 0, y: 1e300}], tags: ["a", "h\u00e9llo", ""],
    deltas: [0, -1, 1, -64, 64], weights: [0.5, -3], shared: {who: "z\u00e9", ids: [1, 128, 16384]},
    fs: [3.25], name: "\u65e5\u672c"}],
  ["area.playerHandler.move", {name: "x", entityId: 300}],
  ["area.playerHandler.move", {entityId: 0, path: [], tags: []}],
  ["onChat", {msg: "hello"}],
  ["onBig", {big: 4294967295, neg: -2147483648, s: "x".repeat(200)}],
  ["onNest", {o: {i: {v: [1, 2, 3]}, k: 5}}],
  ["onNest", {o: {i: {}}}],
];
const dict = {"chat.chatHandler.send": 1, "connector.entryHandler.entry": 2, "onChat": 3,
              "onAdd": 4, "\u00fcn\u00efcode": 5};
// Pomelo's Message.encode miscounts ids >= 2^31 (a signed shift), so none are listed here.
const messages = [
  [1, 0, 0, "connector.entryHandler.entry", '{"uid":"a"}'],
  [127, 0, 0, "a.b.c", '{}'], [128, 0, 1, 8, '{}'], [300, 0, 0, "", ""],
  [16384, 0, 0, "x.y.z", "{}"], [2147483647, 0, 0, "r.r.r", "{}"],
  [268435456, 2, 0, null, '{"code":200}'],
  [0, 1, 0, "chat.chatHandler.send", '{"content":"h\u00e9"}'], [0, 1, 1, 65535, '{}'],
  [0, 3, 0, "onChat", '{"msg":"hi"}'], [0, 3, 1, 13, '{}'], [5, 2, 0, null, ''],
  [1, 0, 0, "r".repeat(255), "{}"],
].map(([id, type, cr, route, body]) =>
  [id, type, cr, route, body, hex(protocol.Message.encode(id, type, cr, route, Buffer.from(body)))]);

console.log(JSON.stringify({
  generator: "pomelo-protobuf 0.4.0 + pomelo-protocol 0.1.6 via gen_pomelo_vectors.js",
  protos,
  parsed_json: JSON.stringify(parsed),
  proto_version_client_only: md5(JSON.stringify(parsed) + JSON.stringify({})),
  protobuf: cases.map(([r, m]) => [r, m, hex(protobuf.encode(r, m))]),
  dict, dict_version: md5(JSON.stringify(dict)),
  messages,
  packages: [[4, "68656c6c6f", hex(protocol.Package.encode(4, Buffer.from("hello")))],
             [3, "", hex(protocol.Package.encode(3))]],
}, null, 1));
