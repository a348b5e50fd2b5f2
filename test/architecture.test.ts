// The layering rule (STYLE G1), checked rather than trusted: src/shared knows no runtime and no upper layer,
// the worker and the agent never import each other, src/node (Node-only code of the agent and the CLI) is
// imported by those two (and the CSI driver, src/csi, and the controller manager, src/controller, which
// nothing imports) only, and no import cycle runs through src/.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { expect, it } from 'vitest';

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const importsOf = (file: string) =>
  [...readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);

it('src/shared imports no runtime module and no upper layer', () => {
  for (const file of tsFiles('src/shared')) {
    for (const spec of importsOf(file)) {
      expect(spec, file).not.toMatch(/^(node:|cloudflare:)|\/(worker|agent|cli|node)\/|^(hono|drizzle-orm|pino|commander|@grpc\/)/);
    }
  }
});

it('src/shared uses no Node or Workers globals', () => {
  for (const file of tsFiles('src/shared')) {
    expect(readFileSync(file, 'utf8'), file).not.toMatch(/\b(process\.|Buffer\.|require\()/);
  }
});

it('the worker and the agent never import each other', () => {
  for (const file of tsFiles('src/worker')) {
    for (const spec of importsOf(file)) expect(spec, file).not.toMatch(/\/agent\//);
  }
  for (const file of tsFiles('src/agent')) {
    for (const spec of importsOf(file)) expect(spec, file).not.toMatch(/\/worker\//);
  }
});

it('src/node imports no Worker code and no cloudflare: module; only the agent and the CLI import it', () => {
  for (const file of tsFiles('src/node')) {
    for (const spec of importsOf(file)) expect(spec, file).not.toMatch(/^cloudflare:|\/(worker|agent|cli)\//);
  }
  for (const file of [...tsFiles('src/shared'), ...tsFiles('src/worker')]) {
    for (const spec of importsOf(file)) expect(spec, file).not.toMatch(/(^|\/)node\//);
  }
});

/** src/ file → the src/ files it imports (relative specifiers; `.js` resolved to the `.ts` source). */
function importGraph(): Map<string, string[]> {
  const files = new Set(tsFiles('src').map((f) => normalize(f)));
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const targets = importsOf(file)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => normalize(join(dirname(file), spec.replace(/\.js$/, '.ts'))))
      .filter((target) => files.has(target));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** Every cycle found by a depth-first search, each as `a.ts -> b.ts -> a.ts`. */
function importCycles(graph: Map<string, string[]>): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].map((f) => relative('src', f)).join(' -> '));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return cycles;
}

it('no import cycle runs through src/', () => {
  const cycles = importCycles(importGraph());
  expect(cycles).toEqual([]);
});

it('the cycle search finds a cycle and names its path', () => {
  const graph = new Map([
    ['src/a.ts', ['src/b.ts']],
    ['src/b.ts', ['src/c.ts']],
    ['src/c.ts', ['src/a.ts']],
  ]);
  expect(importCycles(graph)).toEqual(['a.ts -> b.ts -> c.ts -> a.ts']);
});

it('cloudflare: modules are imported only by the Durable Object facade, so the app and the CA core run in Node', () => {
  const importers = tsFiles('src').filter((file) => importsOf(file).some((spec) => spec.startsWith('cloudflare:')));
  expect(importers).toEqual([join('src', 'worker', 'ca', 'trust-domain-ca.ts')]);
});

it('the agent and the CLI never import each other', () => {
  for (const file of tsFiles('src/agent')) {
    for (const spec of importsOf(file)) expect(spec, file).not.toMatch(/\.\.\/cli\//);
  }
  for (const file of tsFiles('src/cli')) {
    for (const spec of importsOf(file)) expect(spec, file).not.toMatch(/\/agent\//);
  }
});

it('the CSI driver imports only src/shared and src/node, and nothing imports it', () => {
  for (const file of tsFiles('src/csi')) {
    for (const spec of importsOf(file)) expect(spec, file).not.toMatch(/^cloudflare:|\/(worker|agent|cli)\//);
  }
  for (const file of ['src/shared', 'src/worker', 'src/node', 'src/agent', 'src/cli'].flatMap(tsFiles)) {
    for (const spec of importsOf(file)) expect(spec, file).not.toMatch(/(^|\/)csi\//);
  }
});

it('the controller manager imports only src/shared and src/node, and nothing imports it', () => {
  for (const file of tsFiles('src/controller')) {
    for (const spec of importsOf(file)) expect(spec, file).not.toMatch(/^cloudflare:|\/(worker|agent|cli|csi)\//);
  }
  for (const file of ['src/shared', 'src/worker', 'src/node', 'src/agent', 'src/cli', 'src/csi'].flatMap(tsFiles)) {
    for (const spec of importsOf(file)) expect(spec, file).not.toMatch(/(^|\/)controller\//);
  }
});

it('test helpers live in test/helpers only', () => {
  const misplaced = tsFiles('test').filter((file) => !file.startsWith(join('test', 'helpers')) && !/\.test\.ts$/.test(file));
  // vitest's own files: the Kubernetes testbed's global setup, the summary reporter and the workerd setup
  expect(misplaced.sort()).toEqual([join('test', 'k8s', 'global-setup.ts'), join('test', 'summary-reporter.ts'), join('test', 'worker', 'setup.ts')]);
});
