import { defineInterface, type ActorImplementation, type ActorProxy } from '../../src/runtime/interface/interface.ts';
const IRoom = defineInterface({
  protocol: 'IRoom',
  namespace: 'chat',
  types: [
    { type: 'record', name: 'Msg', fields: [{ name: 'from', type: 'string' }, { name: 'text', type: 'string' }, { name: 'at', type: 'long' }] },
    { type: 'enum', name: 'Mood', symbols: ['HAPPY', 'SAD'] },
  ],
  messages: {
    post: { request: [{ name: 'msg', type: 'Msg' }], response: 'int' },
    history: { request: [{ name: 'limit', type: ['null', 'int'] }], response: { type: 'array', items: 'Msg' } },
    mood: { request: [], response: 'Mood' },
    tags: { request: [{ name: 't', type: { type: 'map', values: 'string' } }], response: 'null' },
    ping: { request: [], response: 'null', 'one-way': true },
  },
});
class Room implements ActorImplementation<typeof IRoom> {
  post(msg: { from: string; text: string; at: number }) { return msg.text.length; }
  async history(limit: number | null) { return [{ from: 'a', text: 'b', at: limit ?? 0 }]; }
  mood() { return 'HAPPY' as const; }
  tags(t: Record<string, string>) { return null; }
  ping() {}
}
declare const p: ActorProxy<typeof IRoom>;
const n: Promise<number> = p.post({ from: 'x', text: 'y', at: 1 });
void n; void Room;
