// scripts/pinned-node.mjs: the Node the README's commands and .ci/run use when the machine's own is older.
// One real download at most (the pinned version into the shared cache, which .ci/run has usually filled already);
// the concurrency case re-provisions into a temp cache from npm's own tarball cache, so it needs no network.
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PINNED_NODE_VERSION, TESTED_NODE_VERSIONS, defaultCacheDir, ensureNode, resolveVersion } from '../../scripts/pinned-node.mjs';

const SCRIPT = resolve('scripts/pinned-node.mjs');
const versionOf = (bin: string) => spawnSync(bin, ['-v'], { encoding: 'utf8' }).stdout.trim();
const temps: string[] = [];
const tempCache = () => {
  const dir = mkdtempSync(join(tmpdir(), 'wisp-pinned-node-'));
  temps.push(dir);
  return dir;
};
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('pinned-node', () => {
  it('names a tested version for each supported major and refuses anything else clearly', () => {
    expect(resolveVersion('24')).toBe(PINNED_NODE_VERSION);
    expect(resolveVersion('v26')).toBe(TESTED_NODE_VERSIONS[26]);
    expect(resolveVersion('22.23.5')).toBe('22.23.5');
    expect(() => resolveVersion('20')).toThrow(/no tested version for Node 20; supported majors: 22, 24, 26/);
    expect(() => resolveVersion('lts')).toThrow(/"lts" is not a Node major \(24\) or version \(24\.22\.3\)/);
  });

  it('provisions the pinned Node into the cache and reuses it without asking the registry again', () => {
    const bin = ensureNode(PINNED_NODE_VERSION, { useRunning: false });
    expect(bin).toBe(join(defaultCacheDir(), `node-${PINNED_NODE_VERSION}`, 'bin', 'node'));
    expect(versionOf(bin)).toBe(`v${PINNED_NODE_VERSION}`);
    // no npm at all now: only the cache can answer
    expect(ensureNode(PINNED_NODE_VERSION, { useRunning: false, npmCommand: '/nonexistent/npm' })).toBe(bin);
  }, 300_000);

  it('does not trust a cached copy that reports another version', () => {
    const cacheDir = tempCache();
    const fake = join(cacheDir, `node-${PINNED_NODE_VERSION}`, 'bin');
    mkdirSync(fake, { recursive: true });
    writeFileSync(join(fake, 'node'), '#!/bin/sh\necho v1.0.0\n', { mode: 0o755 });
    expect(() => ensureNode(PINNED_NODE_VERSION, { cacheDir, useRunning: false, npmCommand: '/nonexistent/npm' })).toThrow(/`\/nonexistent\/npm view node-\w+-\w+@24\.22\.3 dist\.integrity` failed/);
    expect(readdirSync(cacheDir)).toEqual([`node-${PINNED_NODE_VERSION}`]); // no temp dir left behind
  });

  it('reports a version the registry does not have', () => {
    const cacheDir = tempCache();
    expect(() => ensureNode('24.99.0', { cacheDir, useRunning: false })).toThrow(/node-\w+-\w+@24\.99\.0.*failed:\n.*(404|No match)/s);
    expect(readdirSync(cacheDir)).toEqual([]);
  }, 60_000);

  it('lets two concurrent runs provision the same version into one cache', async () => {
    const cacheDir = tempCache();
    const code = `import(${JSON.stringify(pathToFileURL(SCRIPT).href)}).then((m) => console.log(m.ensureNode(${JSON.stringify(PINNED_NODE_VERSION)}, { cacheDir: ${JSON.stringify(cacheDir)}, useRunning: false })))`;
    const run = () => promisify(execFile)(process.execPath, ['-e', code], { encoding: 'utf8' });
    const [a, b] = await Promise.all([run(), run()]);
    const bin = join(cacheDir, `node-${PINNED_NODE_VERSION}`, 'bin', 'node');
    expect([a.stdout.trim(), b.stdout.trim()]).toEqual([bin, bin]);
    expect(versionOf(bin)).toBe(`v${PINNED_NODE_VERSION}`);
    expect(readdirSync(cacheDir)).toEqual([`node-${PINNED_NODE_VERSION}`]);
  }, 300_000);

  it('runs a command with the pinned Node first on PATH and passes its exit code through', () => {
    const version = spawnSync(process.execPath, [SCRIPT, '--', 'node', '-p', 'process.version'], { encoding: 'utf8' });
    expect(version.stdout.trim()).toBe(`v${PINNED_NODE_VERSION}`);
    expect(version.status).toBe(0);
    expect(spawnSync(process.execPath, [SCRIPT, '--', 'node', '-e', 'process.exit(7)']).status).toBe(7);
    const bad = spawnSync(process.execPath, [SCRIPT, '--node', '20', '--', 'node', '-v'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no tested version for Node 20/);
    const noCommand = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    expect(noCommand.status).toBe(2);
    expect(noCommand.stderr).toMatch(/^usage: node scripts\/pinned-node\.mjs/);
  }, 120_000);

  it('--any-supported keeps a running Node that meets the engines floor; ./with-node honours WISP_NODE_VERSION', () => {
    // this suite runs on a supported Node (22.12+), whatever its line
    const any = spawnSync(process.execPath, [SCRIPT, '--any-supported', '--', 'node', '-p', 'process.version'], { encoding: 'utf8' });
    expect(any.stdout.trim()).toBe(process.version);
    const withNode = (env: Record<string, string>) =>
      spawnSync(resolve('with-node'), ['node', '-p', 'process.version'], { encoding: 'utf8', env: { ...process.env, ...env } }).stdout.trim();
    expect(withNode({ WISP_NODE_VERSION: PINNED_NODE_VERSION })).toBe(`v${PINNED_NODE_VERSION}`);
    // with no override it is the README's commands: the Node first on PATH when it is supported (this one)
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    delete env.WISP_NODE_VERSION;
    const plain = spawnSync(resolve('with-node'), ['node', '-p', 'process.version'], { encoding: 'utf8', env });
    expect(plain.stdout.trim()).toBe(process.version);
  }, 120_000);
});
