// The Kubernetes adapter's pure parts: the target's parsing (server, CA, auth forms and their
// errors), the profile the shared HTTP exchange reads requests with (attributes, Status replies,
// JSON asked for, Secret filtering only on secrets), how commands are shown, the interactive
// shell unit, and the kubeconfig later steps get.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { parsePolicy } from '../../gateway/adapters.ts';
import { interactiveShellUnits } from '../../gateway/kubernetes/conditions.ts';
import { kubeApi, kubeSummary, statusObject } from '../../gateway/kubernetes/kube-api.ts';
import { kubeconfigText } from '../../gateway/kubernetes/kubeconfig.ts';
import { kubeLine, kubeRenderer } from '../../gateway/kubernetes/renderer.ts';
import { requestInfo } from '../../gateway/kubernetes/request-info.ts';
import type { KubeTarget } from '../../gateway/kubernetes/target.ts';

const FILE = '/ci/gateway.yml';
const target = (body: string): KubeTarget => parsePolicy(`version: 1\ntargets:\n  aks:\n    kind: kubernetes\n${body}`, FILE).targets[0] as KubeTarget;

test('the issue\'s target loads: azure auth takes the AKS server app\'s scope; token-env and client certificates name their variables', () => {
  const t = target('    server: https://prod-dns-1a2b3c.hcp.westeurope.azmk8s.io:443\n    auth: azure\n');
  assert.equal(t.origin, 'https://prod-dns-1a2b3c.hcp.westeurope.azmk8s.io');
  assert.equal(t.port, 443);
  assert.deepEqual(t.auth, { kind: 'azure', scope: '6dae42f8-4368-4678-94ff-3960e28e3630/.default' });
  assert.equal(t.azure, true);
  assert.equal(t.namespace, 'default');
  const tok = target('    server: https://k.example:6443\n    auth: { token-env: KUBE_TOKEN }\n    namespace: staging\n');
  assert.deepEqual([tok.auth, tok.secretEnv, tok.namespace], [{ kind: 'bearer', env: 'KUBE_TOKEN' }, ['KUBE_TOKEN'], 'staging']);
  const cert = target('    server: https://k.example\n    auth: { client-cert-env: CERT, client-key-env: KEY }\n');
  assert.deepEqual(cert.secretEnv, ['CERT', 'KEY']);
});

test('ca-data is a kubeconfig\'s base64 of the PEM (PEM taken too); a value that holds no certificate names itself', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUWn8yKUAc0+fAbVcv0u+vLQ3mNaEwCgYIKoZIzj0EAwIwLzEtMCsGA1UEAwwkS3ViZXJuZXRlcyBB\n-----END CERTIFICATE-----\n';
  assert.throws(() => target(`    server: https://k.example\n    auth: azure\n    ca-data: ${Buffer.from('hello').toString('base64')}\n`), /:7: targets\.aks\.ca-data: holds no PEM certificate/);
  assert.throws(() => target(`    server: https://k.example\n    auth: azure\n    ca-data: ${Buffer.from(pem).toString('base64')}\n`), /ca-data: holds a certificate that does not parse/);
  assert.throws(() => target('    server: https://k.example\n    auth: azure\n    ca-data: x\n    ca-file: y.pem\n'), /give ca-file or ca-data, not both/);
});

test('a server that is not an https origin, and auth forms half given, are refused at their line', () => {
  assert.throws(() => target('    server: http://k.example\n    auth: azure\n'), /:5: targets\.aks\.server: the scheme must be https, not http/);
  assert.throws(() => target('    server: https://rancher.example/k8s/clusters/c-1\n    auth: azure\n'), /path prefix is not supported/);
  assert.throws(() => target('    server: https://user:pw@k.example\n    auth: azure\n'), /put no credentials in the server URL/);
  assert.throws(() => target('    server: https://k.example\n    auth: { client-cert-env: C }\n'), /:6: .*needs both client-cert-env and client-key-env/);
  assert.throws(() => target('    server: https://k.example\n    auth: { token-env: T, client-key-env: K }\n'), /not both/);
  assert.throws(() => target('    server: https://k.example\n    auth: { token-env: T }\n    scope: a/.default\n'), /a scope is for auth: azure/);
});

test('the profile reads requests as the API server does; what does not read one way is unclassified', () => {
  const r = kubeApi.read('DELETE', 'h', '/apis/apps/v1/namespaces/prod/deployments/web', '');
  assert.deepEqual(r.details, { kube: { verb: 'delete', group: 'apps', version: 'v1', namespace: 'prod', resource: 'deployments', name: 'web' } });
  assert.deepEqual(r.approvalLines, ['kubernetes: delete deployments.apps/web -n prod']);
  const w = kubeApi.read('GET', 'h', '/api/v1/secrets', 'watch=1');
  assert.equal((w.details.kube as Record<string, string>).verb, 'watch');
  assert.match(JSON.stringify(kubeApi.read('GET', 'h', '/api/v1/pods', 'watch=true;x').unit), /unclassified/);
  assert.match(JSON.stringify(kubeApi.read('GET', 'h', '/api/v1/pods', 'a=%zz').unit), /invalid percent-escape/);
});

test('Secret values are filtered in responses to secrets only, and request bodies to secrets are sampled by the profile', () => {
  const unit = (path: string, query = ''): object => {
    const r = requestInfo('GET', path, new URLSearchParams(query));
    assert.ok(!('unclassified' in r));
    return { kube: r };
  };
  assert.equal(kubeApi.responseFilter!(unit('/api/v1/namespaces/d/configmaps/c'), ''), null);
  const f = kubeApi.responseFilter!(unit('/api/v1/namespaces/d/secrets/s'), '')!;
  const out = Buffer.concat([f.push(Buffer.from('{"kind":"Secret","data":{"k":"c2VjcmV0"}}')), f.flush()]).toString();
  assert.deepEqual(JSON.parse(out).data, { k: Buffer.from('[masked by gateway]').toString('base64') });
  assert.equal(f.masked, 1);
  assert.equal(kubeApi.requestSampler!(unit('/api/v1/namespaces/d/pods')), null);
  assert.ok(kubeApi.requestSampler!(unit('/api/v1/namespaces/d/secrets')));
});

test('protobuf and CBOR are dropped from Accept so the server answers JSON, which masking reads', () => {
  const h = { accept: 'application/vnd.kubernetes.protobuf, application/json' } as Record<string, string>;
  kubeApi.upstreamHeaders!(h);
  assert.equal(h.accept, 'application/json');
  const only = { accept: 'application/vnd.kubernetes.protobuf;stream=watch' } as Record<string, string>;
  kubeApi.upstreamHeaders!(only);
  assert.equal(only.accept, 'application/json');
  const table = { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' } as Record<string, string>;
  kubeApi.upstreamHeaders!(table);
  assert.equal(table.accept, 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json');
});

test('the gateway\'s refusals are Status objects kubectl prints as "Error from server (Reason)"', () => {
  assert.deepEqual(statusObject(403, 'gateway: denied by rule "x"', 'GatewayPolicyDenied'), {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'gateway: denied by rule "x"', reason: 'Forbidden',
    details: { causes: [{ reason: 'GatewayPolicyDenied', message: 'gateway: denied by rule "x"' }] }, code: 403,
  });
  assert.equal(statusObject(503, 'm').reason, 'ServiceUnavailable');
});

test('commands are shown as kubectl says them, read again from the request line', () => {
  assert.equal(kubeLine('GET https://aks.example/api/v1/namespaces/default/pods?limit=500'), 'list pods -n default');
  assert.equal(kubeLine('GET https://aks.example/api/v1/secrets'), 'list secrets (cluster-wide or all namespaces)');
  assert.equal(kubeLine('GET https://aks.example/api/v1/namespaces/staging/pods/w-0/exec?command=sh&command=-c&command=rm%20-rf%20%2Fdata&stdout=true'),
    "exec pods/w-0 -n staging -- sh -c 'rm -rf /data'");
  assert.equal(kubeLine('GET https://aks.example/api/v1/namespaces/default/pods/web-0/log?follow=true'), 'logs pods/web-0 -n default');
  assert.equal(kubeLine('GET https://aks.example/api/v1/namespaces/default/pods/web-0/status'), 'get pods/web-0 status -n default');
  assert.equal(kubeSummary({ verb: 'get', resource: 'namespaces', name: 'prod', namespace: 'prod' }), 'get namespaces/prod');
  assert.equal(kubeLine('GET https://aks.example/version?timeout=5s'), 'get /version');
  assert.equal(kubeLine('not a request line'), null);
  assert.match(kubeRenderer.markdown({ kind: 'kubernetes.request', text: 'DELETE https://aks.example/apis/apps/v1/namespaces/prod/deployments/web' }), /^`delete deployments\.apps\/web -n prod`\n\n```http\nDELETE /);
});

test('a lone shell with stdin and a terminal is an interactive shell; anything else is read as an exec line', () => {
  const r = requestInfo('GET', '/api/v1/namespaces/s/pods/p/exec', new URLSearchParams());
  assert.ok(!('unclassified' in r));
  assert.deepEqual(interactiveShellUnits(r, ['/bin/bash', '-l'], { stdin: true, tty: true })?.map((u) => [u.program, u.options]), [['bash', ['-l']]]);
  assert.equal(interactiveShellUnits(r, ['sh'], { stdin: true, tty: false }), null);
  assert.equal(interactiveShellUnits(r, ['sh', '-c', 'id'], { stdin: true, tty: true }), null);
  assert.equal(interactiveShellUnits(r, ['python3'], { stdin: true, tty: true }), null);
});

test('the kubeconfig names the gateway, its CA and the per-run token; the first target\'s context is current', () => {
  const text = kubeconfigText([
    { name: 'aks-prod', server: 'https://127.0.0.1:4001', caPem: 'PEM-A', token: 'tok-a', namespace: 'default' },
    { name: 'aks-dev', server: 'https://127.0.0.1:4002', caPem: 'PEM-A', token: 'tok-b', namespace: 'dev' },
  ]);
  const k = parseYaml(text);
  assert.equal(k['current-context'], 'aks-prod');
  assert.deepEqual(k.clusters[1], { name: 'aks-dev', cluster: { server: 'https://127.0.0.1:4002', 'certificate-authority-data': Buffer.from('PEM-A').toString('base64') } });
  assert.deepEqual(k.users[0], { name: 'gateway-aks-prod', user: { token: 'tok-a' } });
  assert.deepEqual(k.contexts[1].context, { cluster: 'aks-dev', user: 'gateway-aks-dev', namespace: 'dev' });
});
