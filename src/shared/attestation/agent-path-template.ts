/**
 * Agent ID path templates, as SPIRE's `agent_path_template` (pkg/common/agentpathtemplate): the path
 * after `/spire/agent/` is rendered from attested fields, e.g. `{{ .PluginName }}/{{ .AccountID }}`.
 * Only plain field references are supported (no pipelines or functions); unknown fields are refused
 * when the template is parsed, so a bad template is a config error, not an attestation failure.
 * @module
 */
import { WispError } from '../errors.js';
import { spiffeIdFromSegments, type SpiffeId, type TrustDomain } from '../spiffe/id.js';

export interface AgentPathTemplate {
  readonly source: string;
  readonly parts: ReadonlyArray<{ text: string } | { field: string }>;
}

/** `.Name`, or a dotted one a caller lists whole, like x509pop's `.Subject.CommonName` */
const FIELD = /\{\{\s*\.([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*)\s*\}\}/g;

/** Parses a template; throws TypeError naming the problem (callers wrap it in a config error). */
export function parseAgentPathTemplate(source: string, fields: readonly string[]): AgentPathTemplate {
  if (source.trim() === '') throw new TypeError('template is empty');
  const parts: Array<{ text: string } | { field: string }> = [];
  let last = 0;
  for (const m of source.matchAll(FIELD)) {
    // a dotted name nobody lists (AWS's `.Tags.name`) is unsupported syntax, not a field
    if (m[1]!.includes('.') && !fields.includes(m[1]!)) continue;
    if (m.index > last) parts.push({ text: source.slice(last, m.index) });
    if (!fields.includes(m[1]!)) throw new TypeError(`unknown field .${m[1]} (known: ${fields.map((f) => `.${f}`).join(', ')})`);
    parts.push({ field: m[1]! });
    last = m.index + m[0].length;
  }
  if (last < source.length) parts.push({ text: source.slice(last) });
  if (parts.some((p) => 'text' in p && /\{\{|\}\}/.test(p.text))) throw new TypeError('only {{ .Field }} references are supported');
  if (source.startsWith('/')) throw new TypeError('template must not start with "/" (it is the path after /spire/agent/)');
  return { source, parts };
}

/**
 * Renders `spiffe://<td>/spire/agent/<template>`. Values come from signed documents; a value that would
 * break out of its path segment (a `/`, or `.`/`..`) is refused.
 */
export function renderAgentId(td: TrustDomain, template: AgentPathTemplate, values: Readonly<Record<string, string>>): SpiffeId {
  const path = template.parts
    .map((p) => {
      if ('text' in p) return p.text;
      const v = values[p.field] ?? '';
      if (v === '' || v.includes('/') || v === '.' || v === '..') {
        throw new WispError('ERR_ATTESTATION_FAILED', `attested field ${p.field} cannot be used in an agent ID`);
      }
      return v;
    })
    .join('');
  return spiffeIdFromSegments(td, 'spire', 'agent', ...path.split('/'));
}
