// How HTTP requests are shown (gateway/http/renderer.ts): in resources, with the request line,
// status, ARM request ids and a long-running operation's status; everything escaped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { esc } from '../../gateway/evidence/html-text.ts';
import { rendererSet } from '../../gateway/evidence/renderers.ts';
import type { TimelineCommand } from '../../gateway/evidence/timeline.ts';
import { parseArmPath } from '../../gateway/http/arm-resource.ts';
import { httpRenderer, readRequestLine, resourceLabel } from '../../gateway/http/renderer.ts';

const SUB = '0b1f6471-1bf0-4dda-aec3-cb9272f09590';
const RG_URL = `https://management.azure.com/subscriptions/${SUB}/resourceGroups/rg1?api-version=2021-04-01`;

function command(text: string, details: Record<string, unknown> = {}, resultDetails: Record<string, unknown> = {}): TimelineCommand {
  return {
    id: 'c1', session: 's1', target: 'arm', seq: 1, time: '2026-12-01T00:00:00Z', kind: 'http.request', text, facts: [], details,
    decision: 'allow', rule: null, reason: null, unclassified: null, approval: null, status: 'ok', count: null, durationUs: 1000,
    error: null, resultDetails, sample: null, masked: null, extra: { command: {}, result: {} },
  };
}

test('the renderer claims http. kinds', () => {
  assert.equal(rendererSet([httpRenderer]).for('http.request'), httpRenderer);
  assert.equal(httpRenderer.fence, 'http');
});

test('request lines are read back, with the resource from the path', () => {
  assert.deepEqual(readRequestLine(`DELETE ${RG_URL}`), { method: 'DELETE', url: RG_URL, path: `/subscriptions/${SUB}/resourceGroups/rg1` });
  assert.deepEqual(readRequestLine('GET https://h'), { method: 'GET', url: 'https://h', path: '/' });
  assert.equal(readRequestLine('not a request line'), null);
  assert.equal(resourceLabel(parseArmPath(`/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/sa1/listKeys`)!), 'Microsoft.Storage/storageAccounts sa1 listKeys');
  assert.equal(resourceLabel(parseArmPath(`/subscriptions/${SUB}/resourcegroups`)!), 'Microsoft.Resources/resourcegroups (list)');
});

test('one line speaks in resources, then the request', () => {
  assert.equal(httpRenderer.line({ kind: 'http.request', text: `DELETE ${RG_URL}` }), `DELETE Microsoft.Resources/resourceGroups rg1 (sub 0b1f6471…) · ${RG_URL}`);
  const keys = `https://management.azure.com/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/sa1/listKeys?api-version=2023-05-01`;
  assert.equal(httpRenderer.line({ text: `POST ${keys}` }), `POST Microsoft.Storage/storageAccounts sa1 listKeys (rg rg1, sub 0b1f6471…) · ${keys}`);
  assert.equal(httpRenderer.line({ text: 'GET https://api.internal.example/v1/users?page=2' }), 'GET https://api.internal.example/v1/users?page=2', 'no ARM resource: the request line');
  assert.equal(httpRenderer.line({ text: 'GET  https://x/\n  y' }), 'GET https://x/ y');
});

test('notes and meta: resource, status, request ids, operation status, body', () => {
  const c = command(
    `DELETE ${RG_URL}`,
    { method: 'DELETE', host: 'management.azure.com', path: `/subscriptions/${SUB}/resourceGroups/rg1`, body: { bytes: 0, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' } },
    { status: 202, request_id: 'req-1', correlation_request_id: 'corr-1', operation: { status: 'Succeeded', url: 'https://management.azure.com/subscriptions/x/operationresults/abc' }, content_type: 'application/json' },
  );
  assert.deepEqual(httpRenderer.notes(c), [
    'resource Microsoft.Resources/resourceGroups rg1 (sub 0b1f6471…)',
    'status 202',
    'operation Succeeded',
    'application/json',
    'x-ms-request-id req-1',
    'x-ms-correlation-request-id corr-1',
    'operation https://management.azure.com/subscriptions/x/operationresults/abc',
    'request body 0 bytes sha256 e3b0c44298fc1c14…',
  ]);
  assert.deepEqual(httpRenderer.meta(c), ['Microsoft.Resources/resourceGroups rg1', 'status 202', 'operation Succeeded', 'application/json']);
  const recorded = command('GET https://stand-in/anything', { resource: parseArmPath('/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/roleAssignments/g1') });
  assert.deepEqual(httpRenderer.notes(recorded), ['resource Microsoft.Authorization/roleAssignments g1 (on /providers/Microsoft.Management/managementGroups/mg1)', 'scope /providers/Microsoft.Management/managementGroups/mg1'], 'the recorded resource wins');
});

test('html escapes everything from the log', () => {
  const name = '<img src=x onerror=alert(1)>';
  const c = command(`GET https://management.azure.com/subscriptions/${SUB}/resourceGroups/${encodeURIComponent(name)}`, {}, { request_id: '<b>id</b>' });
  const html = httpRenderer.html(c, esc);
  assert.ok(html.startsWith('<pre class="cmd-text http">'));
  assert.ok(!html.includes('<img') && !html.includes('<b>'), html);
  assert.ok(html.includes(esc(name)));
});

test('markdown: method and resource, then the request in an http fence no text can close', () => {
  assert.equal(
    httpRenderer.markdown({ kind: 'http.request', text: `DELETE ${RG_URL}` }),
    `\`DELETE\` \`Microsoft.Resources/resourceGroups\` \`rg1\` of subscription \`${SUB}\`\n\n\`\`\`http\nDELETE ${RG_URL}\n\`\`\``,
  );
  const tricky = `POST https://management.azure.com/subscriptions/${SUB}/resourceGroups/a%60%60%60b/providers/Microsoft.Storage/storageAccounts/sa1/listKeys`;
  const md = httpRenderer.markdown({ text: tricky });
  assert.ok(md.startsWith("`POST` `Microsoft.Storage/storageAccounts` `sa1` action `listKeys` in resource group `a'''b`"), md);
  assert.ok(md.includes('```http\n'));
  assert.equal(httpRenderer.markdown({ text: 'GET https://api.internal.example/v1/users' }), '`GET` `/v1/users`\n\n```http\nGET https://api.internal.example/v1/users\n```');
  assert.equal(httpRenderer.markdown({ text: '``` not a request' }), '````http\n``` not a request\n````');
});
