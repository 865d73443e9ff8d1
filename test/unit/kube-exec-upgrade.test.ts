// Reading an exec/attach upgrade request: the argv and flags as the API server converts the query,
// the channel subprotocol (v5, else v4), SPDY and protocol-less upgrades refused with a message.
// The last test runs the real kubectl against a loopback stand-in that refuses the WebSocket
// upgrade: what kubectl sends is what this reader expects, it falls back to SPDY, and the SPDY
// refusal's message is what the user reads. The very last one accepts the WebSocket and writes the
// codec's frames: kubectl prints the output, exits with the status's code, shows a failure's message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { kubectlPath } from '../helpers/kube-api-kubectl.ts';
import { CHANNEL_STATUS, CHANNEL_STDOUT, encodeFrame, exitStatusJson, failureStatusJson } from '../../gateway/kubernetes/exec-channels.ts';
import { negotiateExecProtocol, readExecOptions, readExecUpgrade, type ExecUpgrade } from '../../gateway/kubernetes/exec-upgrade.ts';

const EXEC = '/api/v1/namespaces/prod/pods/web-0/exec';
const WS: IncomingHttpHeaders = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-protocol': 'v5.channel.k8s.io' };

function read(query: string, headers: IncomingHttpHeaders = WS, method = 'GET', p = EXEC): ExecUpgrade {
  return readExecUpgrade({ method, path: p, query, headers });
}
function refusal(u: ExecUpgrade): { status: number; message: string } {
  assert.ok('refuse' in u, `expected a refusal, got ${JSON.stringify(u)}`);
  return u.refuse;
}

test('argv is every command= in order; flags and container as kubectl sends them', () => {
  assert.deepEqual(read('command=sh&command=-c&command=echo+%22a+b%22+%26%26+rm+-rf+%2Ftmp%2Fx&container=app&stdin=true&stdout=true&tty=true'), {
    protocol: 'v5.channel.k8s.io', subresource: 'exec', argv: ['sh', '-c', 'echo "a b" && rm -rf /tmp/x'], container: 'app',
    stdin: true, stdout: true, stderr: false, tty: true,
  });
  assert.deepEqual(read('command=ls&stdout=true&stderr=true'), {
    protocol: 'v5.channel.k8s.io', subresource: 'exec', argv: ['ls'], stdin: false, stdout: true, stderr: true, tty: false,
  });
  // An empty argument is an argument; a key without = has the empty value.
  assert.deepEqual((read('command=printf&command=&command&stdout=1') as { argv: string[] }).argv, ['printf', '', '']);
});

test('flags read as the API server converts them: absent, 0 or false is false, anything else true', () => {
  const flags = (q: string) => {
    const o = readExecOptions('exec', `command=x&${q}`);
    assert.ok(!('problem' in o), JSON.stringify(o));
    return [o.stdin, o.stdout, o.stderr, o.tty];
  };
  assert.deepEqual(flags('stdout=1&stdin=FALSE&stderr=0'), [false, true, false, false]);
  assert.deepEqual(flags('stdout=&stdin=yes'), [true, true, false, false]);
  assert.deepEqual(flags('stdout=False&stderr=true'), [false, false, true, false]);
  // The kubelet drops stderr under a tty.
  assert.deepEqual(flags('stdout=true&stderr=true&tty=true'), [false, true, false, true]);
  assert.match((readExecOptions('exec', 'command=x&stdin=false') as { problem: string }).problem, /at least 1 of stdin, stdout, stderr/);
  assert.match((readExecOptions('exec', 'command=x&tty=true&stderr=true') as { problem: string }).problem, /at least 1 of/);
  // An empty container is the default container, as upstream reads it.
  assert.equal('container' in (readExecOptions('exec', 'command=x&stdout=1&container=') as object), false);
});

test('attach has no argv; an exec without a command and ambiguous queries are refused', () => {
  assert.deepEqual(read('container=app&stdin=true&stdout=true&tty=true', WS, 'GET', '/api/v1/namespaces/prod/pods/web-0/attach'), {
    protocol: 'v5.channel.k8s.io', subresource: 'attach', argv: [], container: 'app', stdin: true, stdout: true, stderr: false, tty: true,
  });
  assert.match(refusal(read('command=ls&stdout=1', WS, 'GET', '/api/v1/namespaces/prod/pods/web-0/attach')).message, /attach request has no command/);
  assert.deepEqual(refusal(read('stdout=true')), { status: 400, message: 'the exec request names no command (command= parameters)' });
  assert.match(refusal(read('command=ls&stdout=true&container=a&container=b')).message, /"container" 2 times/);
  assert.match(refusal(read('command=ls&stdout=true&stdout=false')).message, /"stdout" 2 times/);
  assert.match(refusal(read('command=ls;command=rm&stdout=true')).message, /";"/);
  assert.match(refusal(read('command=ls&command=%zz&stdout=true')).message, /invalid escape/);
  assert.match(refusal(read('command=%ff&stdout=true')).message, /invalid escape/);
  assert.equal(refusal(read('command=ls&stdout=1', WS, 'GET', '/api/v1/namespaces/prod/pods/web-0/portforward')).status, 404);
  assert.equal(refusal(read('command=ls&stdout=1', WS, 'GET', '/api/v1/namespaces/prod/pods/web-0/exec/x')).status, 404);
});

test('subprotocol: v5 preferred, v4 accepted, older and base64 ones refused', () => {
  assert.deepEqual(negotiateExecProtocol('v4.channel.k8s.io, v5.channel.k8s.io'), { protocol: 'v5.channel.k8s.io' });
  assert.deepEqual(negotiateExecProtocol(['base64.channel.k8s.io', 'v4.channel.k8s.io']), { protocol: 'v4.channel.k8s.io' });
  assert.match((negotiateExecProtocol('channel.k8s.io, base64.channel.k8s.io') as { problem: string }).problem, /offers only channel.k8s.io, base64.channel.k8s.io/);
  assert.match((negotiateExecProtocol('v4.base64.channel.k8s.io') as { problem: string }).problem, /does not read/);
  assert.match((negotiateExecProtocol(undefined) as { problem: string }).problem, /offers no channel subprotocol/);
  assert.match((negotiateExecProtocol('v5.channel.k8s.io,,x') as { problem: string }).problem, /not a list of tokens/);
  assert.match((negotiateExecProtocol('v5.channel.k8s.io, v5.channel.k8s.io') as { problem: string }).problem, /twice/);
  const plain = refusal(read('command=ls&stdout=1', { connection: 'Upgrade', upgrade: 'websocket' }));
  assert.equal(plain.status, 400);
  assert.match(plain.message, /kubectl 1\.30 or newer/);
  assert.match(refusal(read('command=ls&stdout=1', WS, 'POST')).message, /GET request, not POST/);
  assert.match(refusal(read('command=ls&stdout=1', { connection: 'close' })).message, /needs a WebSocket upgrade/);
});

test('SPDY is refused with what to do, and the options read for a rule that allows unread streams', () => {
  const spdy = (versions: string[]) => refusal(read('command=ls&stdout=true', { connection: 'Upgrade', upgrade: 'SPDY/3.1', 'x-stream-protocol-version': versions.join(', ') }, 'POST'));
  const old = spdy(['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io']);
  assert.equal(old.status, 403);
  assert.match(old.message, /Use kubectl 1\.30 or newer/);
  assert.deepEqual((old as { spdy?: object }).spdy, { subresource: 'exec', argv: ['ls'], stdin: false, stdout: true, stderr: false, tty: false });
  const fellBack = spdy(['v5.channel.k8s.io', 'v4.channel.k8s.io']);
  assert.match(fellBack.message, /fell back to SPDY.*https:\/\/ proxy-url/);
});

/** A loopback API stand-in that refuses every upgrade (or runs `session` on an accepted WebSocket) the way the gateway would and records them. */
async function refusingApiServer(session?: (ws: WebSocket) => void) {
  const upgrades: { method: string; url: string; headers: IncomingHttpHeaders; answer: ExecUpgrade }[] = [];
  const json = (body: object) => JSON.stringify(body);
  const server = createServer((req, res) => {
    const send = (body: object) => { res.setHeader('content-type', 'application/json'); res.end(json(body)); };
    const at = new URL(req.url!, 'http://x').pathname;
    if (at === '/api') return send({ kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (at === '/apis') return send({ kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
    if (at === '/api/v1') {
      return send({ kind: 'APIResourceList', groupVersion: 'v1', resources: [
        { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list'] },
        { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
      ] });
    }
    if (at === '/api/v1/namespaces/prod/pods/web-0') {
      return send({ kind: 'Pod', apiVersion: 'v1', metadata: { name: 'web-0', namespace: 'prod' },
        spec: { containers: [{ name: 'app', image: 'x' }] }, status: { phase: 'Running' } });
    }
    res.statusCode = 404;
    res.end();
  });
  // The reply a refused upgrade gets: a metav1.Status, which client-go decodes into its error.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const url = new URL(req.url!, 'http://x');
    const answer = readExecUpgrade({ method: req.method!, path: url.pathname, query: url.search.slice(1), headers: req.headers });
    upgrades.push({ method: req.method!, url: req.url!, headers: req.headers, answer });
    if (session && 'protocol' in answer) {
      const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1 << 22, handleProtocols: () => answer.protocol });
      wss.handleUpgrade(req, socket, Buffer.alloc(0), (ws) => session(ws));
      return;
    }
    const refuse = 'refuse' in answer ? answer.refuse : { status: 403, message: 'this stand-in refuses every upgrade' };
    const body = json({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: refuse.message, reason: 'Forbidden', code: refuse.status });
    socket.end(`HTTP/1.1 ${refuse.status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, upgrades, port: (server.address() as AddressInfo).port };
}

test('the real kubectl: its WebSocket request reads as v5 with the argv; refused, it falls back to SPDY and shows the message', async (t) => {
  const api = await refusingApiServer();
  try {
    const result = await kubectlExec(api.port, ['sh', '-c', 'echo "a b" > /tmp/x']);
    assert.equal(api.upgrades.length, 2, `${result.stderr}\n${JSON.stringify(api.upgrades.map((u) => [u.method, u.url]))}`);
    const [ws, spdy] = api.upgrades;
    assert.equal(ws!.method, 'GET');
    assert.deepEqual(ws!.answer, {
      protocol: 'v5.channel.k8s.io', subresource: 'exec', argv: ['sh', '-c', 'echo "a b" > /tmp/x'], container: 'app',
      stdin: false, stdout: true, stderr: true, tty: false,
    });
    assert.equal(spdy!.method, 'POST');
    assert.match(String(spdy!.headers.upgrade), /^SPDY\/3\.1$/i);
    assert.ok('refuse' in spdy!.answer && spdy!.answer.refuse.spdy, 'the SPDY attempt is refused as SPDY');
    t.diagnostic(`kubectl said: ${result.stderr.trim()}`);
    assert.notEqual(result.code, 0);
    // kubectl >= 1.30 offers v5 on SPDY too, so the message says why it fell back.
    assert.match(result.stderr, /over SPDY is refused.*fell back to SPDY/s);
  } finally {
    api.server.close();
  }
});

/** Runs the real kubectl exec against the stand-in (plain HTTP on loopback: the upgrade is under test, not TLS). */
async function kubectlExec(port: number, argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kube-exec-upgrade-'));
  try {
    const kubeconfig = path.join(dir, 'config');
    writeFileSync(kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: t',
      'clusters: [{name: t, cluster: {server: "http://127.0.0.1:' + port + '"}}]',
      'users: [{name: t, user: {token: not-a-secret}}]',
      'contexts: [{name: t, context: {cluster: t, user: t, namespace: prod}}]', '',
    ].join('\n'));
    return await new Promise((resolve) => {
      const child = execFile(kubectlPath(), ['--kubeconfig', kubeconfig, 'exec', 'web-0', '--', ...argv],
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir } },
        (err, stdout, stderr) => resolve({ code: err ? (err as { code?: number }).code ?? null : 0, stdout, stderr }));
      child.stdin?.end();
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the real kubectl reads the codec\'s frames: output, the exit code, a failure status as its error', async () => {
  const exits = await refusingApiServer((ws) => {
    ws.send(encodeFrame(CHANNEL_STDOUT, Buffer.alloc(0)));
    ws.send(encodeFrame(CHANNEL_STDOUT, Buffer.from('hello\n')));
    ws.send(encodeFrame(CHANNEL_STATUS, exitStatusJson(3)));
    ws.close(1000);
  });
  const denies = await refusingApiServer((ws) => {
    ws.send(encodeFrame(CHANNEL_STDOUT, Buffer.alloc(0)));
    ws.send(encodeFrame(CHANNEL_STATUS, failureStatusJson('denied by rule no-rm-in-pods')));
    ws.close(1000);
  });
  try {
    const exited = await kubectlExec(exits.port, ['echo', 'hello']);
    assert.equal(exited.stdout, 'hello\n');
    assert.equal(exited.code, 3);
    assert.match(exited.stderr, /command terminated with exit code 3/);
    const denied = await kubectlExec(denies.port, ['rm', '-rf', '/data']);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /denied by rule no-rm-in-pods/);
    // Accepted over WebSocket, so no SPDY retry.
    assert.deepEqual(denies.upgrades.map((u) => u.method), ['GET']);
  } finally {
    exits.server.close();
    denies.server.close();
  }
});
