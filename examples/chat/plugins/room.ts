// Chat rooms as actors: each room is an actor, each user a client session bound to it. A message
// from one session is pushed to every session of the room.
import { Actor, defineInterface, definePlugin, type Session } from 'koala';

export const IChatRoom = defineInterface(
  {
    protocol: 'IChatRoom',
    messages: {
      /** Who is in the room now. */
      who: { request: [], response: { type: 'array', items: 'string' } },
    },
  },
  // Sessions send and receive plain strings (Avro-encoded).
  { session: { inbound: 'string', outbound: 'string' } },
);

class ChatRoom extends Actor {
  onSessionOpen(session: Session): void {
    this.pushToSessions(`* ${session.claims.user} joined ${this.id}`);
  }

  onSessionMessage(session: Session, text: unknown): void {
    this.pushToSessions(`${session.claims.user}: ${String(text)}`);
  }

  onSessionClosed(session: Session): void {
    this.pushToSessions(`* ${session.claims.user} left`);
  }

  who(): string[] {
    return this.sessions.map((s) => s.claims.user ?? '?').sort();
  }
}

export default definePlugin({ interface: IChatRoom, implementation: ChatRoom });
