// A small Pomelo client over WebSocket: handshake (route dictionary and protobuf protos come
// from the server), heartbeats, request / notify / on(route). Written for the chat page.
//
//   const pomelo = new PomeloClient();
//   await pomelo.connect({ host: 'localhost', port: 3014 });
//   const reply = await pomelo.request('gate.gateHandler.queryEntry', { uid: 'alice' });
//   pomelo.on('onChat', (msg) => ...);
//
// Events besides push routes: 'disconnect' (event), 'kick' ({reason}), 'heartbeatTimeout',
// 'error' (Error).

import {
  Message, Package, Protobuf, decodeMessage, decodePackages, encodeMessage, encodePackage,
  strdecode, strencode,
} from './pomelo-protocol.mjs';

const CLIENT_SYS = { type: 'js-websocket', version: '0.0.1', rsa: {} };
const HANDSHAKE_OK = 200;
const HANDSHAKE_OLD_CLIENT = 501;
const MAX_REQUEST_ID = 2 ** 31 - 1;

export class PomeloClient {
  constructor({ handshakeUser = {}, connectTimeoutMs = 10000 } = {}) {
    this.handshakeUser = handshakeUser;
    this.connectTimeoutMs = connectTimeoutMs;
    this.listeners = new Map();
    this.socket = null;
    this.resetConnectionState();
  }

  resetConnectionState() {
    this.nextRequestId = 1;
    this.pending = new Map(); // request id -> {route, resolve, reject}
    this.routeToCode = {};
    this.codeToRoute = {};
    this.protobuf = new Protobuf();
    this.heartbeatMs = 0;
    this.heartbeatTimer = null;
    this.heartbeatDeadline = null;
  }

  // ------------------------------------------------------------------------------ events

  on(route, fn) {
    if (!this.listeners.has(route)) this.listeners.set(route, new Set());
    this.listeners.get(route).add(fn);
    return this;
  }

  off(route, fn) {
    const set = this.listeners.get(route);
    if (set) set.delete(fn);
    return this;
  }

  emit(route, data) {
    const set = this.listeners.get(route);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(data);
      } catch (err) {
        console.error(`listener of "${route}" failed`, err);
      }
    }
  }

  // ------------------------------------------------------------------------------ connection

  /** Opens the socket and completes the handshake; resolves with the handshake's user data. */
  connect({ host, port, secure = false, path = '/' }) {
    this.disconnect();
    this.resetConnectionState();
    const url = `${secure ? 'wss' : 'ws'}://${host}:${port}${path}`;
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.binaryType = 'arraybuffer';
      this.socket = socket;
      let settled = false;
      const settle = (fn, value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn(value);
      };
      const timer = setTimeout(() => {
        settle(reject, new Error(`no handshake from ${url} within ${this.connectTimeoutMs} ms`));
        this.disconnect();
      }, this.connectTimeoutMs);
      this.onHandshake = (reply) => settle(resolve, reply);
      this.onHandshakeError = (err) => settle(reject, err);

      socket.onopen = () => {
        const handshake = { sys: CLIENT_SYS, user: this.handshakeUser };
        this.sendPackage(Package.HANDSHAKE, strencode(JSON.stringify(handshake)));
      };
      socket.onmessage = (event) => {
        if (socket !== this.socket) return;
        try {
          this.receive(new Uint8Array(event.data));
        } catch (err) {
          this.emit('error', err);
          this.onHandshakeError(err);
          this.disconnect();
        }
      };
      socket.onerror = () => {
        settle(reject, new Error(`cannot connect to ${url}`));
      };
      socket.onclose = (event) => {
        if (socket !== this.socket) return;
        settle(reject, new Error(`${url} closed the connection during the handshake`));
        this.closed(event);
      };
    });
  }

  disconnect() {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
    if (socket.readyState <= 1) socket.close();
    this.closed({ code: 1000, reason: 'disconnected by the client' });
  }

  closed(event) {
    this.socket = null;
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.heartbeatDeadline);
    for (const { reject } of this.pending.values()) reject(new Error('connection closed'));
    this.pending.clear();
    this.emit('disconnect', event);
  }

  get connected() {
    return this.socket !== null && this.socket.readyState === 1;
  }

  sendPackage(type, body) {
    if (!this.connected) throw new Error('not connected');
    this.socket.send(encodePackage(type, body));
  }

  // ------------------------------------------------------------------------------ requests

  /** Sends a request; resolves with the response body (whatever its code). */
  request(route, msg = {}) {
    const id = this.nextRequestId;
    this.nextRequestId = id >= MAX_REQUEST_ID ? 1 : id + 1;
    return new Promise((resolve, reject) => {
      this.sendMessage(id, Message.REQUEST, route, msg);
      this.pending.set(id, { route, resolve, reject });
    });
  }

  notify(route, msg = {}) {
    this.sendMessage(0, Message.NOTIFY, route, msg);
  }

  sendMessage(id, type, route, msg) {
    const body = this.protobuf.canEncode(route)
      ? this.protobuf.encode(route, msg)
      : strencode(JSON.stringify(msg));
    const code = this.routeToCode[route];
    const wireRoute = code === undefined ? route : code;
    this.sendPackage(Package.DATA, encodeMessage(id, type, wireRoute, body));
  }

  decodeBody(route, body) {
    if (this.protobuf.canDecode(route)) return this.protobuf.decode(route, body);
    return body.length ? JSON.parse(strdecode(body)) : {};
  }

  // ------------------------------------------------------------------------------ incoming

  receive(bytes) {
    for (const { type, body } of decodePackages(bytes)) {
      switch (type) {
        case Package.HANDSHAKE: this.handleHandshake(body); break;
        case Package.HEARTBEAT: this.handleHeartbeat(); break;
        case Package.DATA: this.handleData(body); break;
        case Package.KICK: this.handleKick(body); break;
        default: break; // HANDSHAKE_ACK never comes from a server
      }
    }
  }

  handleHandshake(body) {
    const reply = JSON.parse(strdecode(body));
    if (reply.code === HANDSHAKE_OLD_CLIENT) {
      throw new Error('the server rejected this client version (handshake code 501)');
    }
    if (reply.code !== HANDSHAKE_OK) {
      throw new Error(`handshake failed with code ${reply.code}`);
    }
    const sys = reply.sys || {};
    this.heartbeatMs = (sys.heartbeat || 0) * 1000;
    const dict = sys.routeToCode || sys.dict;
    if (dict) {
      this.routeToCode = dict;
      this.codeToRoute = {};
      for (const [route, code] of Object.entries(dict)) this.codeToRoute[code] = route;
    }
    if (sys.protos) {
      this.protobuf = new Protobuf({
        encoderProtos: sys.protos.client,
        decoderProtos: sys.protos.server,
      });
    }
    this.sendPackage(Package.HANDSHAKE_ACK);
    this.onHandshake(reply.user || {});
  }

  // The server answers each heartbeat at once; we send ours every `heartbeat` seconds and give
  // up when the server's answer has not come within twice that.
  handleHeartbeat() {
    if (!this.heartbeatMs) return;
    clearTimeout(this.heartbeatDeadline);
    this.heartbeatDeadline = null;
    if (this.heartbeatTimer) return;
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatTimer = null;
      if (!this.connected) return;
      this.sendPackage(Package.HEARTBEAT);
      this.heartbeatDeadline = setTimeout(() => {
        this.emit('heartbeatTimeout');
        this.disconnect();
      }, this.heartbeatMs * 2);
    }, this.heartbeatMs);
  }

  handleData(body) {
    const message = decodeMessage(body);
    if (message.type === Message.RESPONSE) {
      const pending = this.pending.get(message.id);
      if (!pending) return; // a response to a request we no longer wait for
      this.pending.delete(message.id);
      try {
        pending.resolve(this.decodeBody(pending.route, message.body));
      } catch (err) {
        pending.reject(new Error(`undecodable response to "${pending.route}": ${err.message}`));
      }
    } else if (message.type === Message.PUSH) {
      const route = message.compressRoute ? this.codeToRoute[message.route] : message.route;
      if (route === undefined) {
        throw new Error(`push with unknown route code ${message.route}`);
      }
      this.emit(route, this.decodeBody(route, message.body));
    }
  }

  handleKick(body) {
    let reason = {};
    try {
      reason = JSON.parse(strdecode(body));
    } catch (err) {
      reason = { reason: 'kicked' };
    }
    this.emit('kick', reason);
  }
}
