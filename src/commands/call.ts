import { Args, Flags } from '@oclif/core';
import { KoalaCommand, CliError } from '../cli/base-command.ts';

export default class Call extends KoalaCommand {
  static override description = 'Call an actor method through the gateway and print the result';
  static override strict = false;
  static override examples = ['<%= config.bin %> call IPlayer/1 echo hi', '<%= config.bin %> call IPlayer/1 count --json', '<%= config.bin %> call IRoom/lobby post \'{"from":"ann","text":"hi"}\''];
  static override args = {
    target: Args.string({ description: 'the actor, as Interface/id (e.g. IPlayer/1)', required: true }),
    method: Args.string({ description: 'the method to call', required: true }),
  };
  static override flags = {
    json: Flags.boolean({ description: 'print the result as JSON' }),
    timeout: Flags.integer({ description: 'deadline of the call in milliseconds', default: 30_000, min: 1 }),
    gateway: Flags.string({ description: 'gateway URL of a cluster not started from this project (needs KOALA_SECRET)' }),
  };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(Call);
    const words = (argv as string[]).slice(2);
    const slash = args.target.indexOf('/');
    if (slash <= 0 || slash === args.target.length - 1) {
      throw new CliError(`target "${args.target}" is not an actor identity`, { exitCode: 2, hint: 'write it as Interface/id, for example IPlayer/1' });
    }
    const ifaceName = args.target.slice(0, slash);
    const id = args.target.slice(slash + 1);
    // Loaded here, not at the top: `koala --help` and other commands should not pay for the wire stack.
    const [{ findCluster }, { ClusterClient }, { methodOf }, { parseArg, toPrintableJson }] = await Promise.all([
      import('../cli/cluster.ts'),
      import('../runtime/client/cluster-client.ts'),
      import('../runtime/wire/rpc.ts'),
      import('../cli/call-args.ts'),
    ]);
    const target = await findCluster(process.cwd(), flags);
    const client = await ClusterClient.connect({ url: target.url, cluster: target.cluster, secret: target.secret, timeoutMs: flags.timeout, name: 'koala-call' });
    try {
      const iface = await client.describe(ifaceName);
      const message = methodOf(iface, args.method);
      const fields = message.requestType.fields;
      if (words.length !== fields.length) {
        const sig = fields.map((f) => `${f.name}: ${f.type.typeName}`).join(', ');
        throw new CliError(`${ifaceName}.${args.method}(${sig}) takes ${fields.length} argument${fields.length === 1 ? '' : 's'}, got ${words.length}`, { exitCode: 2 });
      }
      const values = fields.map((f, i) => parseArg(f.name, f.type, words[i]!));
      const result = await client.call(ifaceName, id, args.method, values, { timeoutMs: flags.timeout });
      if (message.oneWay) return;
      if (flags.json || typeof result !== 'string') this.log(toPrintableJson(result, !flags.json));
      else this.log(result);
    } finally {
      client.close();
    }
  }
}
