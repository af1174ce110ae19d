// The peer's server side: a Moleculer broker with an `echo` service on the TCP transporter (random
// port, no UDP discovery). Reports `{ port, nodeID }` over IPC once started; exits when the parent goes away.
import { ServiceBroker } from 'moleculer';

process.on('disconnect', () => process.exit(0));

const nodeID = `bench-echo-${process.pid}`;
const broker = new ServiceBroker({
  nodeID,
  logger: false,
  transporter: { type: 'TCP', options: { udpDiscovery: false, port: 0, useHostname: false, gossipPeriod: 1 } },
});
broker.createService({
  name: 'echo',
  actions: {
    ping(ctx: { params: { n: number } }) {
      return ctx.params.n;
    },
  },
});
await broker.start();
const transporter = (broker.transit as unknown as { tx: { opts: { port: number } } }).tx;
process.send!({ port: transporter.opts.port, nodeID });
process.on('SIGTERM', () => {
  void broker.stop().finally(() => process.exit(0));
});
