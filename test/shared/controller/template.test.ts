import { describe, expect, it } from 'vitest';
import { TEMPLATE_DATA_TYPE, jsonFieldName, templateData, type KubeNode, type KubePod } from '../../../src/controller/kube.js';
import { parseTemplate } from '../../../src/controller/template.js';

// Expected outputs and messages were checked against Go 1.x text/template (a throwaway program over
// structs of the same shape); where Wisp refuses a construct Go has, the test says so.

const pod: KubePod = {
  metadata: { name: 'web-1', namespace: 'prod', uid: 'pod-uid-1', labels: { app: 'web', tier: 'front' }, annotations: { note: 'x' }, generation: 3 },
  spec: { nodeName: 'node-a', serviceAccountName: 'web-sa', hostNetwork: false, nodeSelector: { disk: 'ssd' }, containers: [{ name: 'c' }] },
};
const node: KubeNode = { metadata: { name: 'node-a', uid: 'node-uid-1', labels: { zone: 'z1' } }, spec: { podCIDR: '10.0.0.0/24', providerID: 'fake://node-a' } };
const data = templateData({ trustDomain: 'example.org', clusterName: 'demo', clusterDomain: 'cluster.local' }, pod, node);

function run(source: string): string {
  const t = parseTemplate('t', source);
  if (!t.ok) throw new Error(`parse: ${t.error.message}`);
  const r = t.value.execute(TEMPLATE_DATA_TYPE, data);
  if (!r.ok) throw new Error(`exec: ${r.error.message}`);
  return r.value;
}

function parseError(source: string): string {
  const t = parseTemplate('t', source);
  if (t.ok) throw new Error(`parsed: ${source}`);
  expect(t.error.code).toBe('ERR_BAD_REQUEST');
  return t.error.message;
}

function execError(source: string): string {
  const t = parseTemplate('t', source);
  if (!t.ok) throw new Error(`parse: ${t.error.message}`);
  const r = t.value.execute(TEMPLATE_DATA_TYPE, data);
  if (r.ok) throw new Error(`rendered "${r.value}"`);
  return r.error.message;
}

describe('jsonFieldName: Go field names → Kubernetes JSON names', () => {
  it.each([
    // every field the upstream docs and our templates use
    ['TrustDomain', 'trustDomain'],
    ['Namespace', 'namespace'],
    ['Name', 'name'],
    ['ServiceAccountName', 'serviceAccountName'],
    ['UID', 'uid'],
    ['Labels', 'labels'],
    ['Annotations', 'annotations'],
    ['NodeName', 'nodeName'],
    // initialisms, as the k8s.io/api json tags spell them
    ['DNSPolicy', 'dnsPolicy'],
    ['PodCIDR', 'podCIDR'],
    ['PodCIDRs', 'podCIDRs'],
    ['ProviderID', 'providerID'],
    ['HostPID', 'hostPID'],
    ['OS', 'os'],
    ['SetHostnameAsFQDN', 'setHostnameAsFQDN'],
    // json tags that are not the rule
    ['DeprecatedServiceAccount', 'serviceAccount'],
    ['DoNotUseExternalID', 'externalID'],
  ])('%s → %s', (goName, json) => {
    expect(jsonFieldName(goName)).toBe(json);
  });
});

describe('parseTemplate / execute: constructs', () => {
  it.each([
    ['literal text only', 'spiffe://example.org/static', 'spiffe://example.org/static'],
    ['the data fields', '{{ .TrustDomain }}|{{ .ClusterName }}|{{ .ClusterDomain }}', 'example.org|demo|cluster.local'],
    ['PodMeta fields', '{{ .PodMeta.Name }}.{{ .PodMeta.Namespace }}/{{ .PodMeta.UID }}', 'web-1.prod/pod-uid-1'],
    ['PodSpec fields', '{{ .PodSpec.ServiceAccountName }}@{{ .PodSpec.NodeName }}', 'web-sa@node-a'],
    ['NodeMeta and NodeSpec', '{{ .NodeMeta.Name }}/{{ .NodeMeta.UID }}/{{ .NodeSpec.ProviderID }}', 'node-a/node-uid-1/fake://node-a'],
    ['a map key as a field', '{{ .PodMeta.Labels.app }}', 'web'],
    ['index on a map', '{{ index .PodMeta.Labels "tier" }}', 'front'],
    ['index with a raw string', '{{ index .NodeMeta.Labels `zone` }}', 'z1'],
    ['no spaces inside the action', '{{.PodMeta.Name}}', 'web-1'],
    ['an absent string field is its zero value', '[{{ .PodSpec.Hostname }}]', '[]'],
    ['an int field', '{{ .PodMeta.Generation }}', '3'],
    ['a bool field', '{{ .PodSpec.HostNetwork }}', 'false'],
    ['a whole map prints as Go does', '{{ .PodMeta.Labels }}', 'map[app:web tier:front]'],
    ['left and right trim', 'a  {{- .PodMeta.Name -}}  b', 'aweb-1b'],
    ['trim across newlines', 'a\n\t{{- "x" }}\n', 'ax\n'],
    ['a comment', 'a{{/* ignored */}}b', 'ab'],
    ['a trimmed comment', 'a {{- /* ignored */ -}} b', 'ab'],
    ['string escapes', '{{ "a\\tb\\u00e9" }}', 'a\tbé'],
    ['a pipeline into printf', '{{ .PodMeta.Name | printf "%s-%s" "ns" }}', 'ns-web-1'],
    ['printf verbs', '{{ printf "%v/%d/%q/%%" .PodMeta.Name .PodMeta.Generation .PodMeta.Namespace }}', 'web-1/3/"prod"/%'],
    ['printf with missing and extra args, as Go', '{{ printf "%s" }} {{ printf "%s" "a" "b" }}', '%!s(MISSING) a%!(EXTRA string=b)'],
    ['printf %d of a string, as Go', '{{ printf "%d" .PodMeta.Name }}', '%!d(string=web-1)'],
    ['print spaces only between non-strings (fmt.Sprint)', '{{ print 1 2 "a" 3 }}', '1 2a3'],
    ['len of a map', '{{ len .PodMeta.Labels }}', '2'],
    ['parentheses', '{{ (index .PodMeta.Labels "app") }}-{{ printf "%s" (index .PodMeta.Labels "tier") }}', 'web-front'],
    ['a multi-line template', 'a\n{{ .PodMeta.Name }}\nb', 'a\nweb-1\nb'],
  ])('%s', (_, source, expected) => {
    expect(run(source)).toBe(expected);
  });

  it('a missing map key renders as Go does: <no value> by field, "" by index', () => {
    expect(run('{{ .PodMeta.Labels.missing }}')).toBe('<no value>');
    expect(run('{{ .PodMeta.Labels.missing.deeper }}')).toBe('<no value>');
    expect(run('[{{ index .PodMeta.Labels "missing" }}]')).toBe('[]');
    expect(run('{{ .NodeMeta.Annotations.x }}')).toBe('<no value>'); // no annotations at all
  });

  it('renders the same template for other data', () => {
    const t = parseTemplate('t', 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}');
    if (!t.ok) throw new Error(t.error.message);
    const other = templateData({ trustDomain: 'other.test', clusterName: 'c', clusterDomain: '' }, { metadata: { namespace: 'dev' } }, node);
    expect(t.value.execute(TEMPLATE_DATA_TYPE, other)).toEqual({ ok: true, value: 'spiffe://other.test/ns/dev' });
    expect(t.value.execute(TEMPLATE_DATA_TYPE, data)).toEqual({ ok: true, value: 'spiffe://example.org/ns/prod' });
  });
});

describe('parse errors name the template, line and column', () => {
  it.each([
    ['a{{ .A } }}b', 'template: t:1:8: unexpected "}" in operand'],
    ['{{}}', 'template: t:1:3: missing value for command'],
    ['{{ .PodMeta.Name', 'template: t:1:1: unclosed action'],
    ['{{ ( .PodMeta.Name }}', 'template: t:1:20: unclosed left paren'],
    ['{{ "abc }}', 'template: t:1:4: unterminated quoted string'],
    ['{{ `abc }}', 'template: t:1:4: unterminated raw quoted string'],
    ['{{ "\\z" }}', 'template: t:1:4: invalid syntax in quoted string: unknown escape \\z'],
    ['{{ lower .PodMeta.Name }}', 'template: t:1:4: function "lower" not defined'],
    ['{{ | .PodMeta.Name }}', 'template: t:1:4: unexpected "|" in command'],
    ['{{ .PodMeta.Name | .PodMeta.Name }}', 'template: t:1:18: non-function .PodMeta.Name after "|"'],
    ['{{ .PodMeta.Name "a" }}', "template: t:1:18: can't give argument to non-function .PodMeta.Name"],
    ['{{ .TrustDomain. }}', 'template: t:1:16: unexpected "." in operand'],
    ['{{/* x */ .PodMeta.Name }}', 'template: t:1:10: comment ends before closing delimiter'],
    ['{{/* x ', 'template: t:1:3: unclosed comment'],
    ['{{ if .PodMeta.Name }}x{{ end }}', `template: t:1:4: "if" is not supported (no control structures or nil in Wisp's templates)`],
    ['{{ range .PodMeta.Labels }}x{{ end }}', `template: t:1:4: "range" is not supported (no control structures or nil in Wisp's templates)`],
    ['{{ $x := 1 }}', 'template: t:1:4: variables are not supported'],
    ['{{ .A ! }}', 'template: t:1:7: unexpected "!" in operand'],
    ['{{ printf "%v" 1.5 }}', 'template: t:1:16: only decimal integer and string constants are supported'],
    ['{{ printf "%v" 0x1F }}', 'template: t:1:16: only decimal integer and string constants are supported'],
    ["{{ printf \"%v\" 'a' }}", 'template: t:1:16: only decimal integer and string constants are supported'],
    ['line one\nline {{ .A } }}', 'template: t:2:12: unexpected "}" in operand'],
  ])('%j', (source, message) => {
    expect(parseError(source)).toBe(message);
  });

  it('names the template it was given', () => {
    const t = parseTemplate('dnsNameTemplates[2]', '{{ .A } }}');
    expect(t.ok ? '' : t.error.message).toBe('template: dnsNameTemplates[2]:1:7: unexpected "}" in operand');
  });
});

describe('execution errors name the action and the failing operand', () => {
  it.each([
    ['x{{ .PodMeta.Foo }}', `template: t:1:5: executing "t" at <.PodMeta.Foo>: can't evaluate field Foo in type v1.ObjectMeta`],
    ['{{ .Nope }}', `template: t:1:4: executing "t" at <.Nope>: can't evaluate field Nope in type spireentry.templateData`],
    ['{{ .PodMeta.Labels.app.x }}', `template: t:1:4: executing "t" at <.PodMeta.Labels.app.x>: can't evaluate field x in type string`],
    ['{{ index .PodMeta.Name "a" }}', `template: t:1:4: executing "t" at <index .PodMeta.Name "a">: error calling index: cannot index a value of type string`],
    ['{{ .PodSpec.Containers }}', `template: t:1:1: executing "t" at <.PodSpec.Containers>: cannot print a value of type v1.PodSpec.Containers (Wisp prints strings, numbers, booleans and maps)`],
    ['{{ . }}', `template: t:1:1: executing "t" at <.>: cannot print a value of type spireentry.templateData (Wisp prints strings, numbers, booleans and maps)`],
    ['{{ printf "%x" .PodMeta.Name }}', `template: t:1:4: executing "t" at <printf "%x" .PodMeta.Name>: printf verb %x is not supported (use %s %v %d %q)`],
  ])('%j', (source, message) => {
    expect(execError(source)).toBe(message);
  });
});
