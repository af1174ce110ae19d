// The chat page: a client session bound to the room actor, through `koala/client` for browsers,
// which the gateway serves. Open /index.html?user=ann&room=lobby.
import { BrowserSession } from '/koala/client/browser/session.ts';

const params = new URLSearchParams(location.search);
const user = params.get('user') ?? `guest${Math.floor(Math.random() * 1000)}`;
const room = params.get('room') ?? 'lobby';
const status = document.getElementById('status');
const log = document.getElementById('log');
const text = document.getElementById('text');
const send = document.getElementById('send');

// The IChatRoom protocol (as in plugins/room.ts): typed proxy calls need it.
const IChatRoom = { protocol: 'IChatRoom', messages: { who: { request: [], response: { type: 'array', items: 'string' } } } };

// The ticket: a first packet our backend (the example's gateway plugin) signs for this user.
const ticket = async () => new Uint8Array(await (await fetch(`/chat/ticket?user=${encodeURIComponent(user)}&room=${encodeURIComponent(room)}`)).arrayBuffer());

try {
  const session = await BrowserSession.connect({ ticket });
  // The room's session types (its interface's `session` option): messages and pushes are strings.
  const chat = session.typed({ inbound: 'string', outbound: 'string' });
  chat.onPush((line) => {
    const li = document.createElement('li');
    li.textContent = line;
    log.append(li);
  });
  session.onState((state) => (status.textContent = state === 'open' ? `${user} in ${room}` : state));
  status.textContent = `${user} in ${room} (session ${session.id})`;
  text.disabled = send.disabled = false;
  document.getElementById('say').onsubmit = async (event) => {
    event.preventDefault();
    if (!text.value) return;
    chat.send(text.value);
    text.value = '';
    // A typed call through the same session: who is here now.
    document.title = `Koala chat — ${(await session.getProxy(IChatRoom, room).who()).join(', ')}`;
  };
} catch (err) {
  status.textContent = `refused: ${err.code ?? ''} ${err.message}`;
}
