// Prints child log lines with a coloured, aligned process prefix (`host-1   | …`).
import { styleText } from 'node:util';

const COLOURS = ['cyan', 'magenta', 'yellow', 'green', 'blue', 'redBright', 'cyanBright', 'magentaBright'] as const;

export function createLogPrinter(out: NodeJS.WriteStream = process.stdout): (name: string, line: string) => void {
  const assigned = new Map<string, (typeof COLOURS)[number]>();
  return (name, line) => {
    let colour = assigned.get(name);
    if (colour === undefined) {
      colour = COLOURS[assigned.size % COLOURS.length]!;
      assigned.set(name, colour);
    }
    out.write(`${styleText(colour, name.padEnd(10), { stream: out })}| ${line}\n`);
  };
}
