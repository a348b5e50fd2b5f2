#!/usr/bin/env node
// The Node that builds, tests and packages Wisp, provisioned when the machine's own is older (README "Requirements").
// Plain ESM with no dependencies, so it runs on any Node (20 included) before `npm ci`.
//
// Which Node: the running one when it is on the requested major line, at least the requested version and at least
// package.json's engines floor (same major = same addon ABI, so a newer patch of the LTS is as good as the pin);
// otherwise the exact version from the npm registry (`node-<platform>-<arch>@<version>`, the binary Node's own
// `node` package installs), verified against the registry's sha512 integrity and by `node -v`, cached in
// ${XDG_CACHE_HOME:-~/.cache}/wisp/node-<version>/ (built in a temp dir and renamed into place, so concurrent runs
// either win the rename or use the winner's copy).
//
// CLI: node scripts/pinned-node.mjs [--node <major|version>] [--any-supported] [--print] -- <command> [args...]
//   runs the command with that Node's bin directory first on PATH; exit code (or signal) passed through.
//   --any-supported: the running Node whatever its line when it meets the engines floor (the README's commands,
//   through ./with-node); the requested one only when it does not. --print prints the node path instead.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const PINNED_NODE_VERSION = '24.22.3';
/** The exact version `--node <major>` means for each supported line (CI's Node 26 smoke run uses `--node 26`). */
export const TESTED_NODE_VERSIONS = { 22: '22.23.5', 24: PINNED_NODE_VERSION, 26: '26.12.1' };

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const VERSION_RE = /^(\d+)\.(\d+)\.(\d+)$/;

const parse = (v) => {
  const m = VERSION_RE.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
};
const atLeast = (a, b) => a[0] !== b[0] ? a[0] > b[0] : a[1] !== b[1] ? a[1] > b[1] : a[2] >= b[2];

/** package.json's engines.node (">=X.Y[.Z]"), the one place the floor is written. */
export function enginesFloor() {
  const range = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).engines?.node ?? '';
  const m = /^>=\s*(\d+)\.(\d+)(?:\.(\d+))?$/.exec(range.trim());
  if (!m) throw new Error(`pinned-node: package.json engines.node must be ">=X.Y[.Z]", got ${JSON.stringify(range)}`);
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** "24" or "24.22.3" -> an exact version; anything else is a clear error. */
export function resolveVersion(spec) {
  const s = String(spec).trim().replace(/^v/, '');
  if (/^\d+$/.test(s)) {
    const v = TESTED_NODE_VERSIONS[s];
    if (!v) throw new Error(`pinned-node: no tested version for Node ${s}; supported majors: ${Object.keys(TESTED_NODE_VERSIONS).join(', ')} (or give an exact x.y.z)`);
    return v;
  }
  if (!parse(s)) throw new Error(`pinned-node: ${JSON.stringify(spec)} is not a Node major (24) or version (24.22.3)`);
  return s;
}

export function defaultCacheDir(env = process.env) {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'wisp');
}

function registryPackage() {
  const os = { linux: 'linux', darwin: 'darwin' }[process.platform];
  const cpu = { x64: 'x64', arm64: 'arm64' }[process.arch];
  if (!os || !cpu) throw new Error(`pinned-node: no Node binary package for ${process.platform}-${process.arch}; install Node ${PINNED_NODE_VERSION} yourself`);
  return `node-${os}-${cpu}`;
}

function nodeVersionOf(bin) {
  try {
    return execFileSync(bin, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function npm(npmCommand, args, cwd) {
  try {
    return execFileSync(npmCommand, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const detail = String(err.stderr ?? err.message).split('\n').filter((l) => /ERR|error/i.test(l)).slice(0, 4).join('\n');
    throw new Error(`pinned-node: \`${npmCommand} ${args.join(' ')}\` failed${detail ? `:\n${detail}` : ` (${err.message})`}`, { cause: err });
  }
}

/**
 * Path of a `node` binary of `version` (a major or x.y.z): the running one if it qualifies (see the header), else
 * the cached or freshly provisioned registry copy.
 * Options: cacheDir (default defaultCacheDir()), useRunning (default true), npmCommand (default 'npm').
 */
export function ensureNode(version = PINNED_NODE_VERSION, opts = {}) {
  const exact = resolveVersion(version);
  const want = parse(exact);
  const { cacheDir = defaultCacheDir(), useRunning = true, npmCommand = 'npm' } = opts;

  const running = parse(process.versions.node);
  if (useRunning && running[0] === want[0] && atLeast(running, want) && atLeast(running, enginesFloor())) {
    return process.execPath;
  }

  const dir = join(cacheDir, `node-${exact}`);
  const bin = join(dir, 'bin', 'node');
  if (nodeVersionOf(bin) === `v${exact}`) return bin;

  mkdirSync(cacheDir, { recursive: true });
  const tmp = join(cacheDir, `.tmp-node-${exact}-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(tmp);
  try {
    const pkg = `${registryPackage()}@${exact}`;
    // The registry's integrity, read separately from the download: npm pack checks it too, this checks npm pack.
    const integrity = npm(npmCommand, ['view', pkg, 'dist.integrity'], tmp).trim();
    if (!integrity.startsWith('sha512-')) {
      throw new Error(`pinned-node: ${pkg} not found on the registry (npm view gave ${JSON.stringify(integrity)})`);
    }
    npm(npmCommand, ['pack', pkg, '--silent', '--pack-destination', tmp], tmp);
    const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`pinned-node: npm pack ${pkg} left no tarball`);
    const actual = `sha512-${createHash('sha512').update(readFileSync(join(tmp, tgz))).digest('base64')}`;
    if (actual !== integrity) throw new Error(`pinned-node: ${pkg} tarball integrity ${actual} != registry's ${integrity}`);

    const stage = join(tmp, 'node');
    mkdirSync(stage);
    execFileSync('tar', ['-xzf', join(tmp, tgz), '-C', stage, '--strip-components=1'], { stdio: 'inherit' });
    const got = nodeVersionOf(join(stage, 'bin', 'node'));
    if (got !== `v${exact}`) throw new Error(`pinned-node: ${pkg}'s bin/node reports ${got ?? 'nothing (does not run here)'}`);

    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true }); // a broken copy (the check above failed)
    try {
      renameSync(stage, dir);
    } catch (err) {
      // Another run renamed its copy first: use it.
      if (nodeVersionOf(bin) !== `v${exact}`) throw err;
    }
    return bin;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function usage() {
  return 'usage: node scripts/pinned-node.mjs [--node <major|version>] [--any-supported] [--print] -- <command> [args...]';
}

async function main(argv) {
  let version = PINNED_NODE_VERSION;
  let print = false;
  let anySupported = false;
  let i = 0;
  for (; i < argv.length && argv[i] !== '--'; i++) {
    if (argv[i] === '--node' && argv[i + 1]) version = argv[++i];
    else if (argv[i] === '--print') print = true;
    else if (argv[i] === '--any-supported') anySupported = true;
    else throw new Error(`pinned-node: unexpected ${JSON.stringify(argv[i])}\n${usage()}`);
  }
  const command = argv.slice(i + 1);
  if (!print && command.length === 0) throw new Error(usage());

  const node = anySupported && atLeast(parse(process.versions.node), enginesFloor()) ? process.execPath : ensureNode(version);
  if (print) {
    console.log(node);
    return 0;
  }
  const env = { ...process.env, PATH: [dirname(node), process.env.PATH].filter(Boolean).join(delimiter) };
  const child = spawn(command[0], command.slice(1), { stdio: 'inherit', env });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  return await new Promise((res, rej) => {
    child.on('error', (err) => rej(new Error(`pinned-node: cannot run ${command[0]}: ${err.message}`)));
    child.on('exit', (code, signal) => {
      if (signal) {
        process.removeAllListeners(signal);
        process.kill(process.pid, signal);
      }
      res(code ?? 1);
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err.message);
      process.exit(2);
    },
  );
}
