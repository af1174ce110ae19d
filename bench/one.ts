// Runs one benchmark case in this process and prints its figures as JSON (bench/run.ts calls it).
const [name, seconds] = process.argv.slice(2);
const mod = (await import(`./cases/${name}.ts`)) as { run(seconds: number): Promise<Record<string, number>> };
process.stdout.write(`${JSON.stringify(await mod.run(Number(seconds ?? 3)))}\n`);
process.exit(0);
