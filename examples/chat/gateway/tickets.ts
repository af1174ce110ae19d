// The example's "backend": a gateway route that hands a browser its session ticket — a first
// packet signed with the client secret, binding the user to a room. A real app would check who
// the user is first (a login, a cookie); this demo believes the name it is given.
import { defineGatewayPlugin } from 'koala';

const NAME = /^[\p{L}\p{N}_-]{1,32}$/u;

export default defineGatewayPlugin((app, cluster) => {
  app.get<{ Querystring: { user?: string; room?: string } }>('/chat/ticket', async (req, reply) => {
    const { user = '', room = 'lobby' } = req.query;
    if (!NAME.test(user) || !NAME.test(room)) return reply.code(400).send({ error: 'user and room: 1–32 letters, digits, _ or -' });
    const packet = cluster.signFirstPacket({ claims: { user }, iface: 'IChatRoom', key: room });
    return reply.type('application/octet-stream').send(packet);
  });
});
