// The CLI's layering, checked rather than trusted: src/cli imports src/shared only, never src/worker; the one
// exception is the agent's Workload API client, loaded lazily for --useWorkloadAPI.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const CLI_DIR = 'src/cli';
const importsOf = (file: string) => [...readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);

it('src/cli imports only src/shared, itself and packages (plus the Workload API client, lazily)', () => {
  for (const name of readdirSync(CLI_DIR).filter((n) => n.endsWith('.ts'))) {
    const file = join(CLI_DIR, name);
    for (const spec of importsOf(file)) {
      if (spec === '../agent/workload-api/client.js') {
        expect(name, 'only main.ts loads the Workload API client').toBe('main.ts');
        expect(readFileSync(file, 'utf8')).toContain(`await import('${spec}')`);
        continue;
      }
      expect(spec, file).not.toMatch(/\/(worker|agent)\//);
      if (spec.startsWith('.')) expect(spec, file).toMatch(/^(\.\/|\.\.\/shared\/)/);
    }
  }
});
