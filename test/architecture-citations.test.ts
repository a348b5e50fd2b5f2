/**
 * Comments cite only files that exist: a path of this repository named in a comment of src/, scripts/ or
 * bench/ must be a file here (or an output the build or the agent writes), a SPIFFE standard must be one of
 * ../shared/spiffe-standards, and SPIRE's sources are named by their repository path (pkg/, cmd/, proto/spire/).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const SKIP_DIRS = new Set(['node_modules', '.git', 'dist', 'build', '.wrangler', '.wisp-local', 'gen']);
/** files named in comments that the build, the bench or the agent writes at run time */
const RUNTIME_OUTPUTS = new Set(['bench/results.json', 'dist/agent/inputs.json', 'dist/agent/agent.cjs', 'agent.cjs', 'svid-cache.json']);
const SPIFFE_STANDARDS = new Set([
  'JWT-SVID.md', 'SPIFFE-ID.md', 'SPIFFE.md', 'SPIFFE_Federation.md', 'SPIFFE_Trust_Domain_and_Bundle.md',
  'SPIFFE_Workload_API.md', 'SPIFFE_Workload_Endpoint.md', 'WIT-SVID.md', 'X509-SVID.md',
]);
const SPIRE_SOURCE = /^(pkg|cmd|proto\/spire)\//;
const CITED = /(?<![\w@/.-])(?:\.\/)?((?:[\w.-]+\/)*[\w-]+\.(?:ts|mjs|cjs|md|toml|sql|proto|go|json))\b/g;

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else out.push(relative(ROOT, path));
  }
  return out;
}

/** the text after `//`, `/*` or a leading `*` of each line: comments, near enough */
function commentText(line: string): string | undefined {
  return /(?:\/\/|^\s*\*|\/\*)(.*)$/.exec(line)?.[1];
}

it('comments in src/, scripts/ and bench/ cite only files that exist', () => {
  const files = walk(ROOT);
  const exists = (cited: string) => files.some((f) => f === cited || f.endsWith(`/${cited}`));
  const missing: string[] = [];
  for (const file of files.filter((f) => /^(src|scripts|bench)\/.*\.(ts|mjs)$/.test(f))) {
    readFileSync(join(ROOT, file), 'utf8').split('\n').forEach((line, i) => {
      const comment = commentText(line);
      if (!comment) return;
      for (const [, cited] of comment.matchAll(CITED)) {
        if (exists(cited!) || RUNTIME_OUTPUTS.has(cited!) || SPIFFE_STANDARDS.has(cited!) || SPIRE_SOURCE.test(cited!)) continue;
        missing.push(`${file}:${i + 1} cites ${cited}`);
      }
    });
  }
  expect(missing).toEqual([]);
});
