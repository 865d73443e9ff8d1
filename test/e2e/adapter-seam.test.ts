// A second protocol through the seam, end to end: the throwaway line adapter of
// test/helpers/echo-adapter.ts is given to the real policy loader and the real gateway beside
// the shipped adapters; its target is in the policy file, its `line` condition decides, a held
// line is approved with the real `gateway-action approve`, its answers are masked, its exported
// secret and file reach later steps, and its commands are in `verify`, `replay` and the report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ADAPTERS, nodeFlags, RENDERERS } from '../../gateway/adapters.ts';
import { loadedParser } from '../../gateway/postgres/pg-parser.ts';
import { parsePolicy } from '../../gateway/config/policy.ts';
import { Gateway } from '../../gateway/daemon/gateway.ts';
import { runIdentity } from '../../gateway/identity/github-oidc.ts';
import { echoAdapter, echoRenderer, echoServer } from '../helpers/echo-adapter.ts';
import { readTimeline } from '../../gateway/evidence/timeline.ts';
import { renderReplay } from '../../gateway/evidence/replay-text.ts';
import { cliAsync, readLog, tempDir, waitFor } from '../helpers/gateway.ts';

const GHP = `ghp_${'a1B2c3D4e5'.repeat(3)}abcdef`;

/** A client of the line protocol: sends lines, collects what comes back. */
async function lineClient(address: string, token: string): Promise<{ send(line: string): void; received(): string; end(): void }> {
  const [host, port] = address.split(':') as [string, string];
  const socket = net.connect(Number(port), host);
  await new Promise((r) => socket.once('connect', r));
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('utf8')));
  socket.write(`${token}\n`);
  return { send: (line) => socket.write(`${line}\n`), received: () => got, end: () => socket.end() };
}

test('a line protocol plugs into the daemon, policy, holds, masking, the log and the evidence tools', { timeout: 120_000 }, async () => {
  const upstream = await echoServer();
  const dir = tempDir('gw-seam-');
  const runtime = path.join(dir, 'run');
  fs.mkdirSync(runtime, { mode: 0o700 });
  const env = { ...process.env, GATEWAY_ACTION_RUNTIME_DIR: runtime };
  process.env.GATEWAY_ACTION_RUNTIME_DIR = runtime;
  const policyText = `version: 1
targets:
  lines: { kind: echo, host: 127.0.0.1, port: ${upstream.port} }
rules:
  - name: no-rm
    when: { line: ["rm *"] }
    action: deny
    reason: nothing is removed from CI
  - name: hold-deploys
    when: { line: ["deploy *"] }
    action: approve
masking:
  detectors: [github-token]
`;
  const policy = parsePolicy(policyText, path.join(dir, 'gateway.yml'), [...ADAPTERS, echoAdapter]);
  const gw = await Gateway.start({ policy, logDir: path.join(dir, 'logs'), identity: runIdentity({}), claims: {}, env: {}, runnerEnv: {} });
  // No postgres target: its parser (libpg-query) never loads, and the daemon needs none of its flags.
  assert.equal(loadedParser(), null);
  assert.deepEqual(nodeFlags(policy), []);
  let log = '';
  try {
    const state = path.join(dir, 'state');
    fs.mkdirSync(state);
    const connection = gw.exportConnection(state);
    const token = connection.env.GATEWAY_LINES_TOKEN!;
    assert.ok(connection.secrets.includes(token), 'the adapter declares its token a secret');
    assert.match(connection.env.GATEWAY_LINES_ECHO!, /^127\.0\.0\.1:\d+$/);
    const file = connection.files.find((f) => f.name === 'lines.echo')!;
    assert.equal(fs.readFileSync(file.path, 'utf8'), `${connection.env.GATEWAY_LINES_ECHO}\n`);
    assert.equal(fs.statSync(file.path).mode & 0o777, 0o600);

    const client = await lineClient(connection.env.GATEWAY_LINES_ECHO!, token);
    client.send(`hello ${GHP} and more`);
    await waitFor(() => client.received().includes('and more'), 'the echoed line');
    assert.ok(!client.received().includes(GHP), 'the token in the answer is masked, though it came in 7-byte pieces');
    assert.ok(!client.received().includes(GHP.slice(4, 20)), 'no piece of it passes either');
    client.send('rm -rf /srv');
    await waitFor(() => client.received().includes('# denied'), 'the refusal');
    assert.match(client.received(), /# denied by rule "no-rm": nothing is removed from CI/);
    client.send('deploy prod');
    const id = await waitFor(() => /request ([a-z0-9]+) /.exec(client.received())?.[1], 'the approval request') as string;
    const approved = await cliAsync(['approve', id], { env });
    assert.equal(approved.status, 0, approved.stderr);
    await waitFor(() => client.received().includes('deploy prod\n'), 'the approved line ran');
    assert.ok(!/^rm -rf/m.test(client.received()), 'the denied line never reached the upstream');
    client.end();
  } finally {
    log = (await gw.stop()).log;
    upstream.close();
    delete process.env.GATEWAY_ACTION_RUNTIME_DIR;
  }
  const records = readLog(log);
  const commands = records.filter((r) => r.type === 'command' && r.target === 'lines');
  assert.equal(commands.length, 3);
  assert.match(commands[0]!.text, /^hello /);
  assert.ok(!JSON.stringify(records).includes(GHP), 'the token is masked in the log too');
  assert.deepEqual(commands.slice(1).map((c) => c.text), ['rm -rf /srv', 'deploy prod']);
  assert.deepEqual(commands.map((c) => c.decision?.action), ['allow', 'deny', 'approve']);
  assert.equal(records.find((r) => r.type === 'approval')?.outcome, 'approved');
  const start = records.find((r) => r.type === 'run-start')!;
  assert.deepEqual(start.targets, [{ name: 'lines', kind: 'echo', host: '127.0.0.1', port: upstream.port }]);

  // The evidence tools have no renderer for this protocol: they still verify and show it.
  const verify = await cliAsync(['verify', log]);
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  const replay = await cliAsync(['replay', log]);
  assert.equal(replay.status, 0, replay.stderr);
  for (const line of ['rm -rf /srv', 'deploy prod']) assert.ok(replay.stdout.includes(line), `replay shows ${line}:\n${replay.stdout}`);
  const report = await cliAsync(['report', log, '-o', path.join(dir, 'report.html')]);
  assert.equal(report.status, 0, report.stderr);
  const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
  for (const line of ['rm -rf /srv', 'deploy prod']) assert.ok(html.includes(line), `the report shows ${line}`);
  // With the adapter's renderer registered, replay draws the lines its way.
  const drawn = renderReplay(await readTimeline(log), [...RENDERERS, echoRenderer], { color: false });
  assert.match(drawn, /deploy prod\n\s+\(an echo line\)/);
  assert.ok(!replay.stdout.includes('(an echo line)'), 'the CLI, which ships no such renderer, drew them generically');
});
