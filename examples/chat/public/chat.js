// The chat page's client, written from docs/protocol.md with no library: a room is an actor, this
// page a client session bound to it. Open /index.html?user=ann&room=lobby.
const params = new URLSearchParams(location.search);
const user = params.get('user') ?? `guest${Math.floor(Math.random() * 1000)}`;
const room = params.get('room') ?? 'lobby';
const status = document.getElementById('status');
const log = document.getElementById('log');
const text = document.getElementById('text');
const send = document.getElementById('send');

// ---- just enough Avro binary encoding ----
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

class Writer {
  bytes = [];
  long(n) {
    let z = n >= 0 ? n * 2 : -n * 2 - 1; // zig-zag (exact for |n| < 2^52)
    do {
      let b = z % 128;
      z = Math.floor(z / 128);
      if (z > 0) b |= 128;
      this.bytes.push(b);
    } while (z > 0);
  }
  raw(bytes) {
    this.long(bytes.length);
    for (const b of bytes) this.bytes.push(b);
  }
  string(s) {
    this.raw(utf8.encode(s));
  }
  done() {
    return new Uint8Array(this.bytes);
  }
}

class Reader {
  pos = 0;
  constructor(bytes) {
    this.buf = bytes;
  }
  long() {
    let n = 0, scale = 1, b;
    do {
      b = this.buf[this.pos++];
      n += (b & 127) * scale;
      scale *= 128;
    } while (b & 128);
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }
  raw() {
    const len = this.long();
    const bytes = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return bytes;
  }
  string() {
    return fromUtf8.decode(this.raw());
  }
  boolean() {
    return this.buf[this.pos++] === 1;
  }
  get done() {
    return this.pos >= this.buf.length;
  }
}

const KINDS = ['REQUEST', 'ONEWAY', 'RESPONSE', 'ERROR', 'REDIRECT', 'CANCEL', 'MESSAGE', 'PUSH'];

/** An Envelope record (docs/protocol.md): kind, id, iface, key, method, chain, deadline, epoch, headers, payload. */
function envelope(kind, payload) {
  const w = new Writer();
  w.long(KINDS.indexOf(kind));
  w.long(0);
  for (const s of ['', '', '', '']) w.string(s);
  w.long(0);
  w.long(0);
  w.long(0); // empty headers map
  w.raw(payload);
  return w.done();
}

function readEnvelope(r) {
  const kind = KINDS[r.long()];
  r.long();
  const [iface, key, method, chain] = [r.string(), r.string(), r.string(), r.string()];
  r.long();
  r.long();
  for (let n = r.long(); n !== 0; n = r.long()) {
    if (n < 0) {
      n = -n;
      r.long();
    }
    for (let i = 0; i < n; i++) (r.string(), r.string());
  }
  return { kind, iface, key, method, chain, payload: r.raw() };
}

function avroString(s) {
  const w = new Writer();
  w.string(s);
  return w.done();
}

// ---- the session ----
function show(line) {
  const li = document.createElement('li');
  li.textContent = line;
  log.append(li);
}

const ticket = new Uint8Array(await (await fetch(`/chat/ticket?user=${encodeURIComponent(user)}&room=${encodeURIComponent(room)}`)).arrayBuffer());
const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/session`);
ws.binaryType = 'arraybuffer';
let bound = false;
ws.onopen = () => ws.send(ticket);
ws.onmessage = (event) => {
  const r = new Reader(new Uint8Array(event.data));
  if (!bound) {
    // SessionReply: ok, session, iface, key, resume, code, message.
    const ok = r.boolean();
    const [session, iface, key, , code, message] = [r.string(), r.string(), r.string(), r.string(), r.string(), r.string()];
    if (!ok) {
      status.textContent = `refused: ${code} ${message}`;
      return;
    }
    bound = true;
    status.textContent = `${user} in ${key} (${iface}, session ${session})`;
    text.disabled = send.disabled = false;
    return;
  }
  while (!r.done) {
    const env = readEnvelope(r);
    if (env.kind === 'PUSH') show(new Reader(env.payload).string());
  }
};
ws.onclose = (event) => (status.textContent = `disconnected (${event.code})`);
document.getElementById('say').onsubmit = (event) => {
  event.preventDefault();
  if (!text.value) return;
  ws.send(envelope('MESSAGE', avroString(text.value)));
  text.value = '';
};
