// A gateway plugin: the seed's example, `GET /echo/{msg}` answered by the actor IPlayer/1.
// Enable it in the manifest: `gateway: { plugins: [examples/http-echo/routes.ts] }`.
import { defineGatewayPlugin } from 'koala';
import { IPlayer } from '../../plugins/player/index.ts';

export default defineGatewayPlugin((app, cluster) => {
  app.get<{ Params: { msg: string } }>('/echo/:msg', async (req) => cluster.getProxy(IPlayer, 1).echo(req.params.msg));
});
