// One source per rule (issue 13): each rule below is written in exactly one place in src/, so a second copy
// (the way five loopback checks and two DNS-name rules drifted apart) fails here instead of in production.
// A row names the rule, a pattern that marks a definition of it, and the files allowed to hold one
// (none: the pattern must not appear at all, e.g. a runtime codec the shared one replaces).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Generated code is not ours to deduplicate. */
const GENERATED = [/worker-configuration\.d\.ts$/, /\/workload-api\/gen\//, /\/agent\/sds\/gen\//, /\/csi\/gen\//];
const SOURCES = tsFiles('src')
  .filter((f) => !GENERATED.some((g) => g.test(f)))
  .map((file) => ({ file, text: readFileSync(file, 'utf8') }));

interface Rule {
  name: string;
  pattern: RegExp;
  /** the only files where the pattern may appear (empty: nowhere) */
  in: string[];
}

const RULES: Rule[] = [
  // DNS names in SANs
  { name: 'the DNS-name rule', pattern: /function dnsNameProblem\b/, in: ['src/shared/spiffe/dns-name.ts'] },
  { name: 'the RFC 1123 label pattern', pattern: /\{0,61\}|\{1,63\}/, in: ['src/shared/spiffe/dns-name.ts'] },
  // JWT-SVIDs
  { name: 'the JWT-SVID algorithm list', pattern: /'ES512'|'PS256'/, in: ['src/shared/spiffe/jwt-svid.ts'] },
  // remote-key-set.ts verifies cloud identity tokens (GCP, Azure) against their issuers' key sets: not JWT-SVIDs;
  // wit-svid.ts verifies WIT-SVIDs and their proof tokens, another profile (WIT-SVID.md) with its own rules
  { name: 'JWT verification', pattern: /\bjwtVerify\(/, in: ['src/shared/spiffe/jwt-svid.ts', 'src/shared/attestation/remote-key-set.ts', 'src/shared/spiffe/wit-svid.ts'] },
  // X.509 path validation
  { name: 'certificate signature checks (path validation)', pattern: /\.verify\(\{\s*publicKey/, in: ['src/shared/spiffe/x509-path.ts'] },
  { name: 'names compared as strings', pattern: /\.issuer\s*===|===\s*\w+\.subject\b/, in: [] },
  { name: 'the signing-certificate rule', pattern: /function validateSigningCert\b/, in: ['src/shared/spiffe/ca-cert.ts'] },
  // which key algorithms are accepted: the issuer's and the agent's certificate readers only name the key
  { name: 'the key-algorithm rule', pattern: /function classifyKeyAlgorithm\b|MIN_RSA_MODULUS_BITS\s*=/, in: ['src/shared/spiffe/key-algorithm.ts'] },
  // base64
  { name: 'the base64 alphabet', pattern: /ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/, in: ['src/shared/encoding/base64.ts'] },
  { name: 'base64 codec functions', pattern: /function (toBase64|toBase64Url|fromBase64|decodeBase64|decodeBase64Url|base64ToBytes)\b/, in: ['src/shared/encoding/base64.ts'] },
  { name: 'btoa / atob', pattern: /\b(btoa|atob)\(/, in: [] },
  { name: "Buffer's base64", pattern: /['"]base64(url)?['"]/, in: [] },
  { name: "jose's base64url", pattern: /\bbase64url\.(en|de)code\(/, in: [] },
  // PEM
  { name: 'PEM armour', pattern: /-----(BEGIN|END)/, in: ['src/shared/encoding/pem.ts'] },
  { name: "@peculiar/x509's PEM converter", pattern: /\bPemConverter\b/, in: [] },
  // bytes
  { name: 'byte equality', pattern: /function \w*(bytesEqual|equalBytes|sameBytes)\b|\|= \w+\[\w+\]! \^ \w+\[\w+\]/, in: ['src/shared/encoding/bytes.ts'] },
  { name: 'element-wise equality', pattern: /\.every\(\(\w+, \w+\) => \w+ === \w+\[\w+\]\)/, in: [] },
  { name: "Node's timingSafeEqual", pattern: /\btimingSafeEqual\b/, in: [] },
  // loopback hosts ("https, or http only on loopback")
  { name: 'the loopback rule', pattern: /function isLoopbackHost\b/, in: ['src/shared/net/loopback.ts'] },
  { name: 'loopback host literals', pattern: /['"](localhost|\[::1\]|127\.0\.0\.1)['"]/, in: ['src/shared/net/loopback.ts'] },
  // Go-style single-dash long flags (SPIRE's -spiffeID, the CSI driver's -plugin-name)
  { name: 'the single-dash flag rewrite', pattern: /\^-\[A-Za-z\]\[A-Za-z0-9/, in: ['src/node/go-flags.ts'] },
  { name: 'byte concatenation', pattern: /function \w*concat\w*\(|\.set\(\w+, (at|offset)\);\s*(at|offset) \+= \w+\.(length|byteLength)/, in: ['src/shared/encoding/bytes.ts'] },
  // the agents' notification channel: who is told, and the one message (the agent reads nothing out of one)
  { name: 'which agents an entry change notifies', pattern: /function noticeForParents\b|isAgentId\(\w+\)\) return \{ all: true \}/, in: ['src/shared/agent-notifications.ts'] },
  { name: 'the sync notice', pattern: /'\{"type":"sync"\}'/, in: ['src/shared/agent-notifications.ts'] },
];

const filesWith = (pattern: RegExp) => SOURCES.filter((s) => pattern.test(s.text)).map((s) => s.file);

describe('each rule is defined once in src/', () => {
  it.each(RULES.map((r) => [r.name, r] as const))('%s', (_name, rule) => {
    const found = filesWith(rule.pattern);
    expect(found.filter((f) => !rule.in.includes(f)), `${rule.name} (${rule.pattern}) is only allowed in ${rule.in.join(', ') || 'no file'}`).toEqual([]);
    if (rule.in.length > 0) expect(found.length, `${rule.name} (${rule.pattern}) should be found in ${rule.in.join(', ')}`).toBeGreaterThan(0);
  });

});
