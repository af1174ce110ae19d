#!/usr/bin/env node
// Koala's CLI entry. Sources are TypeScript run through Node's type stripping, so Node must be
// 22.18 or newer; `npx koala` and npm scripts use the node@24 the project installs.
import module from 'node:module';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`error Koala needs Node.js 22.18 or newer; this is ${process.version}.\nhint  run it as \`npx koala …\` inside the project (it uses the node@24 that \`npm install\` put in node_modules), or install Node 24\n`);
  process.exit(1);
}
// Caches compiled code between runs: most of a short command's start-up is compiling modules.
module.enableCompileCache?.();

const { execute, settings } = await import('@oclif/core');
// Node itself runs our .ts sources; oclif must not look for ts-node or compiled output.
settings.enableAutoTranspile = false;
await execute({ dir: import.meta.url });
