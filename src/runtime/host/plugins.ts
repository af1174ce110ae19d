// Finds and imports plugin modules named in the manifest (files, directories or globs, relative
// to the project root) and checks that each default-exports Koala plugins.
import { glob, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isActorPlugin, type ActorPlugin } from '../actor/plugin.ts';

const GLOB_CHARS = /[*?[\]{}]/;
const INDEX_FILES = ['index.ts', 'index.mts', 'index.mjs', 'index.js'];

export class PluginError extends Error {
  override name = 'PluginError';
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

async function entryOfDirectory(dir: string): Promise<string | undefined> {
  const pkg = await readFile(join(dir, 'package.json'), 'utf8').catch(() => undefined);
  if (pkg !== undefined) {
    const main = (JSON.parse(pkg) as { main?: string }).main;
    if (main) return join(dir, main);
  }
  for (const name of INDEX_FILES) {
    if ((await stat(join(dir, name)).catch(() => undefined))?.isFile()) return join(dir, name);
  }
  return undefined;
}

/** Expands plugin specs into module files, in a stable order, without duplicates. */
export async function resolvePluginFiles(root: string, specs: readonly string[]): Promise<string[]> {
  const files = new Set<string>();
  for (const spec of specs) {
    const matches: string[] = [];
    if (GLOB_CHARS.test(spec)) {
      for await (const m of glob(spec, { cwd: root })) matches.push(resolve(root, m));
      matches.sort();
    } else {
      matches.push(isAbsolute(spec) ? spec : resolve(root, spec));
    }
    let found = 0;
    for (const path of matches) {
      if (await isDirectory(path)) {
        const entry = await entryOfDirectory(path);
        if (entry === undefined) {
          if (GLOB_CHARS.test(spec)) continue; // a glob may match unrelated directories
          throw new PluginError(`plugin directory ${relative(root, path) || '.'} has no index.ts/index.js or package.json "main"; point the manifest at the module file`);
        }
        files.add(entry);
        found++;
      } else if ((await stat(path).catch(() => undefined))?.isFile()) {
        files.add(path);
        found++;
      } else if (!GLOB_CHARS.test(spec)) {
        throw new PluginError(`plugin ${spec} not found (looked for ${path}); fix the path in the manifest's hosts[].plugins`);
      }
    }
    if (found === 0) throw new PluginError(`plugin pattern ${spec} matched no module under ${root}; fix hosts[].plugins in the manifest`);
  }
  return [...files];
}

/** Imports one plugin module, with a one-line error naming it (as `what`, by default "plugin <file>") if it fails. */
export async function importPlugin(root: string, file: string, what = `plugin ${relative(root, file)}`): Promise<unknown> {
  try {
    return ((await import(pathToFileURL(file).href)) as { default?: unknown }).default;
  } catch (err) {
    throw new PluginError(`${what} failed to load: ${((err as Error).message ?? String(err)).split('\n')[0]}`);
  }
}

/** Imports each module; its default export must be a plugin or an array of plugins. */
export async function loadPlugins(root: string, specs: readonly string[]): Promise<ActorPlugin[]> {
  const plugins: ActorPlugin[] = [];
  const byInterface = new Map<string, string>();
  for (const file of await resolvePluginFiles(root, specs)) {
    const shown = relative(root, file);
    const main = await importPlugin(root, file);
    const exported = Array.isArray(main) ? (main as unknown[]) : [main];
    for (const candidate of exported) {
      if (!isActorPlugin(candidate)) {
        throw new PluginError(`plugin ${shown} must \`export default definePlugin({ interface, implementation })\` (or an array of them)`);
      }
      const name = candidate.interface.name;
      if (name === 'koala' || name.startsWith('koala.')) throw new PluginError(`plugin ${shown}: interface names under "koala." are reserved`);
      const other = byInterface.get(name);
      if (other !== undefined) throw new PluginError(`interface ${name} is implemented twice on one host (${other} and ${shown}); keep one`);
      byInterface.set(name, shown);
      plugins.push(candidate);
    }
  }
  return plugins;
}
