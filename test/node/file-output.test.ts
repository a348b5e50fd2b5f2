// Output files of the agent and the CLI (src/node/file-output.ts): explicit modes whatever the umask, a
// created directory 0700, and an existing file replaced whole.
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OUTPUT_DIR_MODE, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, writeFileAtomic, writeOutputFiles } from '../../src/node/file-output.js';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('writeOutputFiles', () => {
  it('creates the directory 0700 and gives each file its mode', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'wisp-out-')), 'svid');
    const paths = await writeOutputFiles(dir, [
      { name: 'svid.pem', data: 'cert', mode: PUBLIC_FILE_MODE },
      { name: 'key.pem', data: 'key', mode: PRIVATE_FILE_MODE },
    ]);
    expect(paths).toEqual([join(dir, 'svid.pem'), join(dir, 'key.pem')]);
    expect(mode(dir)).toBe(OUTPUT_DIR_MODE);
    expect(mode(join(dir, 'svid.pem'))).toBe(0o644);
    expect(mode(join(dir, 'key.pem'))).toBe(0o600);
    expect(readFileSync(join(dir, 'key.pem'), 'utf8')).toBe('key');
  });

  it('replaces an existing file, mode included, and leaves no temp file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wisp-out-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'old', { mode: 0o644 });
    await writeFileAtomic(file, 'new\n', PRIVATE_FILE_MODE);
    expect(readFileSync(file, 'utf8')).toBe('new\n');
    expect(mode(file)).toBe(0o600);
    await writeFileAtomic(file, ['a', 'b']);
    expect(readFileSync(file, 'utf8')).toBe('ab');
    expect(readdirSync(dir)).toEqual(['token']);
  });
});
