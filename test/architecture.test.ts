// The layering rule (STYLE G1), checked rather than trusted: src/shared knows no runtime and no upper layer,
// and the worker and the agent never import each other.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
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
      expect(spec, file).not.toMatch(/^(node:|cloudflare:)|\/(worker|agent|cli)\/|^(hono|drizzle-orm|pino|commander|@grpc\/)/);
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
