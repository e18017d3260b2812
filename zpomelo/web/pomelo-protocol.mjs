// The Pomelo hybrid protocol as pure functions: packages, messages and pomelo-protobuf bodies.
// No sockets and no DOM, so the same file runs in the browser and under `node --test`.
// The byte layouts are those of docs/protocol.md in the zpomelo repository (sections 2, 6 and 7).

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export const strencode = (text) => utf8Encoder.encode(text);
export const strdecode = (bytes) => utf8Decoder.decode(bytes);

// ---------------------------------------------------------------------------------- packages

export const Package = Object.freeze({
  HANDSHAKE: 1,
  HANDSHAKE_ACK: 2,
  HEARTBEAT: 3,
  DATA: 4,
  KICK: 5,
});

const HEADER_SIZE = 4;
const MAX_BODY = 0xffffff;

/** One package: type byte, 3-byte big-endian length, body. */
export function encodePackage(type, body = new Uint8Array(0)) {
  if (body.length > MAX_BODY) {
    throw new RangeError(`package body of ${body.length} bytes exceeds ${MAX_BODY}`);
  }
  const out = new Uint8Array(HEADER_SIZE + body.length);
  out[0] = type;
  out[1] = (body.length >> 16) & 0xff;
  out[2] = (body.length >> 8) & 0xff;
  out[3] = body.length & 0xff;
  out.set(body, HEADER_SIZE);
  return out;
}

/** Every package in `bytes` (one WebSocket message may carry several) -> [{type, body}]. */
export function decodePackages(bytes) {
  const packages = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < HEADER_SIZE) {
      throw new Error(`truncated package header at byte ${offset}`);
    }
    const type = bytes[offset];
    if (type < Package.HANDSHAKE || type > Package.KICK) {
      throw new Error(`unknown package type ${type} at byte ${offset}`);
    }
    const length = (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3];
    const start = offset + HEADER_SIZE;
    if (start + length > bytes.length) {
      throw new Error(`package at byte ${offset} announces ${length} bytes, ${bytes.length - start} present`);
    }
    packages.push({ type, body: bytes.subarray(start, start + length) });
    offset = start + length;
  }
  return packages;
}

// ---------------------------------------------------------------------------------- messages

export const Message = Object.freeze({
  REQUEST: 0,
  NOTIFY: 1,
  RESPONSE: 2,
  PUSH: 3,
});

const hasId = (type) => type === Message.REQUEST || type === Message.RESPONSE;
const hasRoute = (type) => type !== Message.RESPONSE;

// Varints are built with arithmetic, not bit operators, so ids above 2^31 stay exact.
function varintBytes(value) {
  const out = [];
  do {
    let group = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) group += 128;
    out.push(group);
  } while (value > 0);
  return out;
}

/**
 * Message bytes (no package header). `route` is a string, or a number (a dictionary code,
 * sent in 2 bytes); RESPONSE carries no route.
 */
export function encodeMessage(id, type, route, body = new Uint8Array(0)) {
  const compressRoute = typeof route === 'number';
  const head = [(type << 1) | (compressRoute ? 1 : 0)];
  if (hasId(type)) head.push(...varintBytes(id));
  let routeBytes = null;
  if (hasRoute(type)) {
    if (compressRoute) {
      if (!Number.isInteger(route) || route < 0 || route > 0xffff) {
        throw new RangeError(`route code ${route} does not fit in 2 bytes`);
      }
      head.push((route >> 8) & 0xff, route & 0xff);
    } else {
      routeBytes = strencode(route || '');
      if (routeBytes.length > 255) {
        throw new RangeError(`route "${route}" is longer than 255 bytes`);
      }
      head.push(routeBytes.length);
    }
  }
  const routeLength = routeBytes ? routeBytes.length : 0;
  const out = new Uint8Array(head.length + routeLength + body.length);
  out.set(head, 0);
  if (routeBytes) out.set(routeBytes, head.length);
  out.set(body, head.length + routeLength);
  return out;
}

/** Message bytes -> {id, type, compressRoute, route, body}; route is a number when compressed. */
export function decodeMessage(bytes) {
  if (bytes.length < 1) throw new Error('empty message');
  const flag = bytes[0];
  if (flag & 0x10) throw new Error('gzip-compressed message bodies are not supported');
  const compressRoute = (flag & 1) === 1;
  const type = (flag >> 1) & 0x7;
  if (type > Message.PUSH) throw new Error(`unknown message type ${type}`);
  let offset = 1;
  let id = 0;
  if (hasId(type)) {
    let scale = 1;
    for (;;) {
      if (offset >= bytes.length) throw new Error('truncated message id');
      const group = bytes[offset++];
      id += (group & 0x7f) * scale;
      if (group < 128) break;
      scale *= 128;
    }
  }
  let route = null;
  if (hasRoute(type)) {
    if (compressRoute) {
      if (offset + 2 > bytes.length) throw new Error('truncated route code');
      route = (bytes[offset] << 8) | bytes[offset + 1];
      offset += 2;
    } else {
      if (offset >= bytes.length) throw new Error('truncated route');
      const length = bytes[offset++];
      if (offset + length > bytes.length) throw new Error('truncated route');
      route = strdecode(bytes.subarray(offset, offset + length));
      offset += length;
    }
  }
  return { id, type, compressRoute, route, body: bytes.subarray(offset) };
}

// ---------------------------------------------------------------------------------- protobuf
// pomelo-protobuf (not Google protobuf): int32 is zigzag like sInt32, floats little-endian,
// repeated scalars are key + element count + elements, no 64-bit types.

const WIRE = Object.freeze({ uInt32: 0, sInt32: 0, int32: 0, double: 1, string: 2, float: 5 });
const MESSAGE_WIRE_TYPE = 2;
const isScalar = (type) => type in WIRE && type !== 'string';

/**
 * One proto in its source form ({"required string name": 1, "message Child": {...}}) -> the
 * parsed form Pomelo servers send in the handshake: {name: {option, type, tag}, __tags,
 * __messages}. A proto already parsed is returned as it is.
 */
export function parseProto(source) {
  if (source && source.__tags) return source;
  const proto = { __tags: {}, __messages: {} };
  for (const [key, value] of Object.entries(source)) {
    const words = key.trim().split(/\s+/);
    if (words[0] === 'message' && words.length === 2) {
      proto.__messages[words[1]] = parseProto(value);
    } else if (words.length === 3) {
      const [option, type, name] = words;
      proto[name] = { option, type, tag: value };
      proto.__tags[value] = name;
    } else {
      throw new Error(`bad proto field "${key}": want "<required|optional|repeated> <type> <name>"`);
    }
  }
  return proto;
}

/** {route: proto} in source or parsed form -> {route: parsed proto}. */
export function parseProtos(protos) {
  const parsed = {};
  for (const [route, proto] of Object.entries(protos || {})) parsed[route] = parseProto(proto);
  return parsed;
}

class ByteWriter {
  constructor(size = 64) {
    this.bytes = new Uint8Array(size);
    this.length = 0;
  }

  reserve(count) {
    if (this.length + count <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + count));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  writeBytes(bytes) {
    this.reserve(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
  }

  writeVarint(value) {
    this.writeBytes(varintBytes(value));
  }

  writeFixed(size, setter) {
    this.reserve(size);
    setter(new DataView(this.bytes.buffer, this.bytes.byteOffset + this.length, size));
    this.length += size;
  }

  result() {
    return this.bytes.slice(0, this.length);
  }
}

class ByteReader {
  constructor(bytes) {
    this.bytes = bytes;
    this.offset = 0;
  }

  need(count) {
    if (this.offset + count > this.bytes.length) {
      throw new Error(`protobuf body truncated at byte ${this.offset}`);
    }
  }

  readVarint() {
    let value = 0;
    let scale = 1;
    for (;;) {
      this.need(1);
      const group = this.bytes[this.offset++];
      value += (group & 0x7f) * scale;
      if (group < 128) return value;
      scale *= 128;
    }
  }

  readBytes(count) {
    this.need(count);
    const out = this.bytes.subarray(this.offset, this.offset + count);
    this.offset += count;
    return out;
  }

  readFixed(size, getter) {
    this.need(size);
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.offset, size);
    this.offset += size;
    return getter(view);
  }
}

const zigzag = (n) => (n < 0 ? -n * 2 - 1 : n * 2);
const unzigzag = (n) => (n % 2 === 1 ? -(n + 1) / 2 : n / 2);

/** Encodes and decodes the bodies of the routes its protos name (one direction each). */
export class Protobuf {
  constructor({ encoderProtos = {}, decoderProtos = {} } = {}) {
    this.encoderProtos = parseProtos(encoderProtos);
    this.decoderProtos = parseProtos(decoderProtos);
  }

  canEncode(route) {
    return Object.prototype.hasOwnProperty.call(this.encoderProtos, route);
  }

  canDecode(route) {
    return Object.prototype.hasOwnProperty.call(this.decoderProtos, route);
  }

  encode(route, msg) {
    const proto = this.encoderProtos[route];
    if (!proto) throw new Error(`no protobuf proto for route "${route}"`);
    const writer = new ByteWriter();
    encodeFields(writer, msg, proto, this.encoderProtos, route);
    return writer.result();
  }

  decode(route, bytes) {
    const proto = this.decoderProtos[route];
    if (!proto) throw new Error(`no protobuf proto for route "${route}"`);
    const reader = new ByteReader(bytes);
    return decodeFields(reader, bytes.length, proto, this.decoderProtos);
  }
}

function findMessage(type, proto, protos) {
  const found = proto.__messages[type] || protos[`message ${type}`];
  if (!found) throw new Error(`unknown protobuf type "${type}"`);
  return found;
}

function writeKey(writer, type, tag) {
  const wire = type in WIRE ? WIRE[type] : MESSAGE_WIRE_TYPE;
  writer.writeVarint(tag * 8 + wire);
}

function encodeFields(writer, msg, proto, protos, path) {
  for (const [name, field] of Object.entries(proto)) {
    if (name.startsWith('__')) continue;
    if (field.option === 'required' && (msg[name] === undefined || msg[name] === null)) {
      throw new Error(`protobuf field "${path}.${name}" is required`);
    }
  }
  // Field order follows the message's own keys, as pomelo-protobuf does.
  for (const [name, value] of Object.entries(msg)) {
    const field = Object.prototype.hasOwnProperty.call(proto, name) ? proto[name] : null;
    if (!field || name.startsWith('__') || value === undefined || value === null) continue;
    if (field.option === 'repeated') {
      if (!Array.isArray(value)) throw new Error(`protobuf field "${path}.${name}" must be an array`);
      if (value.length === 0) continue;
      if (isScalar(field.type)) {
        writeKey(writer, field.type, field.tag);
        writer.writeVarint(value.length);
        for (const item of value) encodeValue(writer, field.type, item, proto, protos, `${path}.${name}`);
      } else {
        for (const item of value) {
          writeKey(writer, field.type, field.tag);
          encodeValue(writer, field.type, item, proto, protos, `${path}.${name}`);
        }
      }
    } else {
      writeKey(writer, field.type, field.tag);
      encodeValue(writer, field.type, value, proto, protos, `${path}.${name}`);
    }
  }
}

function encodeValue(writer, type, value, proto, protos, path) {
  switch (type) {
    case 'uInt32':
      writer.writeVarint(value);
      break;
    case 'int32':
    case 'sInt32':
      writer.writeVarint(zigzag(value));
      break;
    case 'float':
      writer.writeFixed(4, (view) => view.setFloat32(0, value, true));
      break;
    case 'double':
      writer.writeFixed(8, (view) => view.setFloat64(0, value, true));
      break;
    case 'string': {
      const bytes = strencode(String(value));
      writer.writeVarint(bytes.length);
      writer.writeBytes(bytes);
      break;
    }
    default: {
      const inner = new ByteWriter();
      encodeFields(inner, value, findMessage(type, proto, protos), protos, path);
      writer.writeVarint(inner.length);
      writer.writeBytes(inner.bytes.subarray(0, inner.length));
    }
  }
}

function decodeFields(reader, end, proto, protos) {
  const msg = {};
  while (reader.offset < end) {
    const key = reader.readVarint();
    const tag = Math.floor(key / 8);
    const wire = key % 8;
    const name = proto.__tags[tag];
    if (name === undefined) {
      skipValue(reader, wire);
      continue;
    }
    const field = proto[name];
    if (field.option === 'repeated') {
      const list = msg[name] || (msg[name] = []);
      if (isScalar(field.type)) {
        const count = reader.readVarint();
        for (let i = 0; i < count; i++) list.push(decodeValue(reader, field.type, proto, protos));
      } else {
        list.push(decodeValue(reader, field.type, proto, protos));
      }
    } else {
      msg[name] = decodeValue(reader, field.type, proto, protos);
    }
  }
  return msg;
}

function decodeValue(reader, type, proto, protos) {
  switch (type) {
    case 'uInt32':
      return reader.readVarint();
    case 'int32':
    case 'sInt32':
      return unzigzag(reader.readVarint());
    case 'float':
      return reader.readFixed(4, (view) => view.getFloat32(0, true));
    case 'double':
      return reader.readFixed(8, (view) => view.getFloat64(0, true));
    case 'string':
      return strdecode(reader.readBytes(reader.readVarint()));
    default: {
      const length = reader.readVarint();
      reader.need(length);
      return decodeFields(reader, reader.offset + length, findMessage(type, proto, protos), protos);
    }
  }
}

function skipValue(reader, wire) {
  switch (wire) {
    case 0: reader.readVarint(); break;
    case 1: reader.readBytes(8); break;
    case 2: reader.readBytes(reader.readVarint()); break;
    case 5: reader.readBytes(4); break;
    default: throw new Error(`unknown protobuf wire type ${wire}`);
  }
}
