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
//
// Session resume (zpomelo's extension, docs/protocol.md section 12), with `resume: true`: a lost
// connection is reconnected with backoff and the session comes back with the pushes missed
// meanwhile. Events: 'drop' (reason) when the link is lost, 'resumed' when the session is back,
// 'sessionLost' (reason) when the server gave a fresh session instead (log in again);
// 'disconnect' only when the client gives up or disconnect() is called. Requests in flight when
// the link dropped are rejected. A stock Pomelo server ignores `resume` and nothing changes.

import {
  Message, Package, Protobuf, decodeMessage, decodePackages, encodeMessage, encodePackage,
  strdecode, strencode,
} from './pomelo-protocol.mjs';

const CLIENT_SYS = { type: 'js-websocket', version: '0.0.1', rsa: {} };
const HANDSHAKE_OK = 200;
const HANDSHAKE_OLD_CLIENT = 501;
const MAX_REQUEST_ID = 2 ** 31 - 1;
const PUSH_FLAG = Message.PUSH << 1; // message flag byte: the type sits in bits 1..3
const TYPE_BITS = 0x7 << 1;

export class PomeloClient {
  constructor({
    handshakeUser = {}, connectTimeoutMs = 10000, resume = false, WebSocketClass = undefined,
  } = {}) {
    this.handshakeUser = handshakeUser;
    this.connectTimeoutMs = connectTimeoutMs;
    this.WebSocketClass = WebSocketClass;
    this.listeners = new Map();
    this.socket = null;
    // resume: the token of our session, its window (s) and the pushes read on it
    this.resume = resume ? { token: null, window: 0, pushes: 0 } : null;
    this.target = null; // {host, port, secure, path} of the last connect()
    this.reconnectTimer = null;
    this.resetConnectionState();
  }

  resetConnectionState() {
    if (!this.reconnecting) this.nextRequestId = 1; // ids go on across a resume
    this.kicked = false;
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
    if (this.resume) this.resume = { token: null, window: 0, pushes: 0 };
    this.target = { host, port, secure, path };
    return this.open();
  }

  open() {
    this.resetConnectionState();
    const { host, port, secure, path } = this.target;
    const url = `${secure ? 'wss' : 'ws'}://${host}:${port}${path}`;
    return new Promise((resolve, reject) => {
      const Socket = this.WebSocketClass || WebSocket;
      const socket = new Socket(url);
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
        if (this.reconnecting) this.lost({ code: 4000, reason: 'handshake timeout' });
        else this.disconnect();
      }, this.connectTimeoutMs);
      this.onHandshake = (reply) => settle(resolve, reply);
      this.onHandshakeError = (err) => settle(reject, err);

      socket.onopen = () => {
        const sys = { ...CLIENT_SYS };
        if (this.resume) {
          sys.resume = this.resume.token
            ? { token: this.resume.token, pushes: this.resume.pushes } : {};
        }
        const handshake = { sys, user: this.handshakeUser };
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
        this.lost(event);
      };
    });
  }

  // The link is gone without us asking: a resumable session reconnects, anything else closes.
  lost(event) {
    if (!this.resume || !this.resume.token || this.kicked) {
      this.closed(event);
      return;
    }
    this.abandonSocket();
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.heartbeatDeadline);
    for (const { reject } of this.pending.values()) reject(new Error('connection lost'));
    this.pending.clear();
    const reason = event && event.reason ? event.reason : 'connection lost';
    if (!this.reconnecting) {
      this.reconnecting = { until: Date.now() + (this.resume.window + 10) * 1000, delay: 50 };
      this.emit('drop', reason);
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    const state = this.reconnecting;
    if (Date.now() >= state.until) {
      this.reconnecting = null;
      this.closed({ code: 1006, reason: 'could not reconnect' });
      return;
    }
    const wait = state.delay * (0.5 + Math.random() / 2); // jitter: not all clients at once
    state.delay = Math.min(state.delay * 2, 2000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.open().catch(() => {}); // a failed attempt ends in lost() again, which reschedules
    }, wait);
  }

  abandonSocket() {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
    // No close frame: if it got through, the server would take it as a goodbye and end the
    // session. Node's ws can drop the socket without one; a browser's dies with the link.
    try {
      if (socket.readyState <= 1 && socket.terminate) socket.terminate();
    } catch (err) { /* already gone */ }
  }

  disconnect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const wasReconnecting = this.reconnecting;
    this.reconnecting = null;
    const socket = this.socket;
    if (!socket) {
      if (wasReconnecting) this.closed({ code: 1000, reason: 'disconnected by the client' });
      return;
    }
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
    let resumed = null;
    if (this.resume) resumed = this.applyResume(sys.resume);
    this.sendPackage(Package.HANDSHAKE_ACK);
    this.onHandshake(reply.user || {});
    if (resumed === true) this.emit('resumed');
    else if (resumed === false) this.emit('sessionLost', (sys.resume && sys.resume.reason) || 'no resume');
  }

  // The server's sys.resume -> true (session back), false (a fresh one), null (none was asked).
  applyResume(reply) {
    const asked = Boolean(this.resume.token);
    this.reconnecting = null;
    if (!reply || typeof reply.token !== 'string') {
      this.resume = { token: null, window: 0, pushes: 0 };
      return asked ? false : null;
    }
    const resumed = reply.resumed === true;
    this.resume = {
      token: reply.token,
      window: typeof reply.window === 'number' && reply.window > 0 ? reply.window : 0,
      pushes: resumed ? this.resume.pushes : 0,
    };
    return asked ? resumed : null;
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
        if (this.resume && this.resume.token) this.lost({ code: 4000, reason: 'heartbeat timeout' });
        else this.disconnect();
      }, this.heartbeatMs * 2);
    }, this.heartbeatMs);
  }

  handleData(body) {
    if (this.resume && body.length && (body[0] & TYPE_BITS) === PUSH_FLAG) this.resume.pushes += 1;
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
    this.kicked = true;
    this.emit('kick', reason);
  }
}
