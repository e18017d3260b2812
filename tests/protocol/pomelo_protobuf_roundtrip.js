// Reads {protos, cases: [[route, obj, hex]]} on stdin; for each case prints what Pomelo's own
// pomelo-protobuf makes of it: [decode(hex), hex of encode(obj)]. Used by test_pomelo_crosscheck.py.
const protobuf = require('pomelo-protobuf');
const fs = require('fs');
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const parsed = protobuf.parse(input.protos);
protobuf.init({encoderProtos: parsed, decoderProtos: parsed});
console.log(JSON.stringify(input.cases.map(([route, obj, hex]) => {
  let dec, enc;
  try { dec = protobuf.decode(route, Buffer.from(hex, 'hex')); } catch (e) { dec = 'ERR ' + e.message; }
  try {
    const b = protobuf.encode(route, obj);
    enc = b ? Buffer.from(b).toString('hex') : 'NULL';
  } catch (e) { enc = 'ERR ' + e.message; }
  return [dec, enc];
})));
