// The CLI's layering, checked rather than trusted: src/cli imports src/shared and src/node (the Node-only code
// it shares with the agent) only, never src/worker; the
// exceptions are agent modules loaded lazily by one command each: the Workload API client (--useWorkloadAPI,
// main.ts) and the SPIFFE-authenticated bundle fetch (`wisp federation refresh` of https_spiffe, federation.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const CLI_DIR = 'src/cli';
/** agent module → the one CLI file allowed to load it, lazily */
const LAZY_AGENT_MODULES: Record<string, string> = {
  '../agent/workload-api/client.js': 'main.ts',
  '../agent/federation/spiffe-bundle-fetch.js': 'federation.ts',
};
const importsOf = (file: string) => [...readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);

it('src/cli imports only src/shared, src/node, itself and packages (plus a few agent modules, lazily)', () => {
  for (const name of readdirSync(CLI_DIR).filter((n) => n.endsWith('.ts'))) {
    const file = join(CLI_DIR, name);
    for (const spec of importsOf(file)) {
      if (Object.hasOwn(LAZY_AGENT_MODULES, spec)) {
        expect(name, `only ${LAZY_AGENT_MODULES[spec]} loads ${spec}`).toBe(LAZY_AGENT_MODULES[spec]);
        expect(readFileSync(file, 'utf8')).toContain(`await import('${spec}')`);
        continue;
      }
      expect(spec, file).not.toMatch(/\/(worker|agent)\//);
      if (spec.startsWith('.')) expect(spec, file).toMatch(/^(\.\/|\.\.\/shared\/|\.\.\/node\/)/);
    }
  }
});
