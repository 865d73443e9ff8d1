// The runner harness, proved on throwaway actions written into temp dirs: inputs and defaults
// arrive as INPUT_*, file commands in both formats are collected and applied the runner's way,
// state reaches post, failures skip steps, cancellation still runs post, orphans are found.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runJob, parseKeyValueFile, parseWorkflowCommand, type JobResult, type RunJobOptions } from '../helpers/runner.ts';

// Throwaway actions and workspaces all live here, removed at the end.
const ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-harness-'));
after(() => fs.rmSync(ROOT, { recursive: true, force: true }));
const run = (o: RunJobOptions): Promise<JobResult> => runJob({ workspace: fs.mkdtempSync(path.join(ROOT, 'workspace-')), ...o });

const CORE = import.meta.resolve('@actions/core'); // a file: URL, importable from anywhere

const ACTION_YML = `name: throwaway
description: a test double
inputs:
  who:
    description: required, no default
    required: true
  greeting:
    default: hello
  token:
    default: \${{ github.token }}
  run-label:
    default: run-\${{ github.run_id }}-\${{ github.job }}-\${{ github.run_attempt }}
  display name:
    description: a name with a space
  mode:
    default: normal
runs:
  using: node24
  main: main.js
  post: post.js
`;

// Plain fs writes, both file-command formats, as any action (or @actions/core 3) does.
const MAIN_JS = String.raw`
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { randomUUID } = require('node:crypto');
const env = process.env;
const line = (file, k, v) => fs.appendFileSync(env[file], k + '=' + v + '\n');
const heredoc = (file, k, v) => {
  const d = 'ghadelimiter_' + randomUUID();
  fs.appendFileSync(env[file], k + '<<' + d + '\n' + v + '\n' + d + '\n');
};
const secret = 'pw-' + randomUUID();
console.log('::add-mask::' + secret);
console.log('connecting with ' + secret);
line('GITHUB_OUTPUT', 'greeting', env.INPUT_GREETING + ', ' + env.INPUT_WHO);
heredoc('GITHUB_OUTPUT', 'multi', 'line one\nline two=with equals');
line('GITHUB_OUTPUT', 'inputs', Object.keys(env).filter((k) => k.startsWith('INPUT_')).sort().join(' '));
line('GITHUB_OUTPUT', 'token', env.INPUT_TOKEN);
line('GITHUB_OUTPUT', 'run-label', env.INPUT_RUN_LABEL === undefined ? 'missing' : 'wrong-name');
line('GITHUB_OUTPUT', 'label', env['INPUT_RUN-LABEL']);
line('GITHUB_OUTPUT', 'display', env.INPUT_DISPLAY_NAME);
line('GITHUB_OUTPUT', 'token-env', String(env.GITHUB_TOKEN));
line('GITHUB_OUTPUT', 'cwd', process.cwd());
line('GITHUB_STATE', 'started', 'yes');
heredoc('GITHUB_STATE', 'secret', secret);
line('GITHUB_ENV', 'GREETING_ENV', env.INPUT_GREETING);
heredoc('GITHUB_ENV', 'MULTI_ENV', 'a\nb');
const bin = path.join(env.RUNNER_TEMP, 'throwaway-bin');
fs.mkdirSync(bin, { recursive: true });
fs.writeFileSync(path.join(bin, 'throwaway-tool'), '#!/bin/sh\necho tool-ran\n', { mode: 0o755 });
fs.appendFileSync(env.GITHUB_PATH, bin + '\n');
fs.appendFileSync(env.GITHUB_STEP_SUMMARY, '## main\n');
console.log('::warning file=main.js,line=3::careful%0Anow');
console.log('::set-output name=legacy::old-style');
console.log('::stop-commands::pause-token');
console.log('::error::not a command while stopped');
console.log('::pause-token::');
if (env.INPUT_MODE === 'fail') process.exitCode = 1;
if (env.INPUT_MODE === 'daemon') {
  // One daemon detached the usual way, one that also clears RUNNER_TRACKING_ID to escape the runner.
  const a = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
  const e = { ...env };
  delete e.RUNNER_TRACKING_ID;
  const b = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore', env: e });
  a.unref(); b.unref();
  line('GITHUB_OUTPUT', 'daemons', a.pid + ' ' + b.pid);
}
if (env.INPUT_MODE === 'slow') setTimeout(() => {}, 30_000);
`;

const POST_JS = String.raw`
const fs = require('node:fs');
const env = process.env;
fs.appendFileSync(env.GITHUB_OUTPUT, 'post-state=' + env.STATE_started + '\n');
fs.appendFileSync(env.GITHUB_OUTPUT, 'post-secret-ok=' + (env.STATE_secret && env.STATE_secret.startsWith('pw-')) + '\n');
fs.appendFileSync(env.GITHUB_OUTPUT, 'post-env=' + env.GREETING_ENV + '|' + JSON.stringify(env.MULTI_ENV) + '\n');
fs.appendFileSync(env.GITHUB_OUTPUT, 'post-input=' + env.INPUT_WHO + '\n');
fs.appendFileSync(env.GITHUB_STEP_SUMMARY, '## post\n');
console.log('post ran');
`;

function throwaway(files: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(ROOT, 'action-'));
  for (const [name, content] of Object.entries({ 'action.yml': ACTION_YML, 'main.js': MAIN_JS, 'post.js': POST_JS, ...files })) {
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

const JOB_ENV = {
  GITHUB_TOKEN: 'ghs_job-token', GITHUB_RUN_ID: '4242', GITHUB_JOB: 'migrate', GITHUB_RUN_ATTEMPT: '2',
  GITHUB_REPOSITORY: 'octo-org/payments',
};

const alive = (pid: number): boolean => {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
};

test('file-command parsing: NAME=value and heredocs, with the runner errors', () => {
  assert.deepEqual(parseKeyValueFile('A=1\nB<<EOF\nx\ny=z\nEOF\nC=a=b\n\nD<<ghadelimiter_1\r\n\r\nghadelimiter_1\r\n'), [['A', '1'], ['B', 'x\ny=z'], ['C', 'a=b'], ['D', '']]);
  assert.throws(() => parseKeyValueFile('A<<EOF\nnever closed\n'), /Matching delimiter not found 'EOF'/);
  assert.throws(() => parseKeyValueFile('no separator\n'), /Invalid format/);
  assert.deepEqual(parseWorkflowCommand('::warning file=a%2Cb.js,line=3::x%0Ay%25'), { command: 'warning', properties: { file: 'a,b.js', line: '3' }, data: 'x\ny%' });
  assert.equal(parseWorkflowCommand('plain text'), null);
});

test('inputs, defaults, outputs, env, path, state, summary, masks reach where the runner puts them', async () => {
  const actionDir = throwaway();
  const job = await run({
    actionDir,
    inputs: { who: 'alice', 'display name': 'Alice A.', unknown: 'x' },
    env: JOB_ENV,
    steps: [
      'echo "env=$GREETING_ENV multi=$(echo "$MULTI_ENV" | tr "\\n" ,) inputs=${INPUT_WHO:-none} token=${GITHUB_TOKEN:-none}"; throwaway-tool',
      { run: 'echo "STEP_VAR=$STEP_VAR" >> "$GITHUB_OUTPUT"; echo "FROM_STEP=1" >> "$GITHUB_ENV"', env: { STEP_VAR: 'step-level' } },
      'echo "from-step=$FROM_STEP"',
    ],
  });
  assert.equal(job.main.status, 0, job.main.stderr);
  assert.equal(job.main.outcome, 'success');
  const o = job.outputs;
  assert.equal(o.greeting, 'hello, alice');
  assert.equal(o.multi, 'line one\nline two=with equals');
  assert.equal(o.inputs, 'INPUT_DISPLAY_NAME INPUT_GREETING INPUT_MODE INPUT_RUN-LABEL INPUT_TOKEN INPUT_UNKNOWN INPUT_WHO');
  assert.equal(o.token, 'ghs_job-token', '${{ github.token }} default');
  assert.equal(o['run-label'], 'missing', 'hyphens are kept in INPUT_ names');
  assert.equal(o.label, 'run-4242-migrate-2');
  assert.equal(o.display, 'Alice A.');
  assert.equal(o['token-env'], 'undefined', 'GITHUB_TOKEN is a context, not in the environment');
  assert.equal(o.cwd, job.workspace);
  assert.equal(o.legacy, 'old-style');
  // A post step's outputs are the step's own: the runner keeps them nowhere.
  const p = job.post!.outputs;
  assert.equal(o['post-state'], undefined);
  assert.equal(p['post-state'], 'yes');
  assert.equal(p['post-secret-ok'], 'true');
  assert.equal(p['post-env'], 'hello|"a\\nb"');
  assert.equal(p['post-input'], 'alice');
  assert.equal(o.STEP_VAR, undefined, 'run steps have their own outputs');
  assert.equal(job.steps[1]!.outputs.STEP_VAR, 'step-level');

  assert.deepEqual(job.exportedEnv, { GREETING_ENV: 'hello', MULTI_ENV: 'a\nb', FROM_STEP: '1' });
  assert.deepEqual(Object.keys(job.state).sort(), ['secret', 'started']);
  assert.equal(job.summary, '## main\n## post\n');
  assert.equal(job.masks.length, 1);
  assert.match(job.masks[0]!, /^pw-/);
  assert.equal(job.paths.length, 1);

  assert.equal(job.steps[0]!.stdout.trim(), 'env=hello multi=a,b, inputs=none token=none\ntool-ran');
  assert.equal(job.steps[2]!.stdout.trim(), 'from-step=1');
  assert.ok(job.main.stdout.includes(job.masks[0]!), 'raw stdout keeps the value');
  assert.ok(!job.log.includes(job.masks[0]!), 'the log masks it');
  assert.match(job.log, /connecting with \*\*\*/);

  assert.match(job.commandFiles['main/GITHUB_OUTPUT']!, /^multi<<ghadelimiter_/m);
  assert.match(job.commandFiles['main/GITHUB_STATE']!, /^secret<<ghadelimiter_/m);
  assert.equal(job.commandFiles['post/GITHUB_STEP_SUMMARY'], '## post\n');
  assert.ok('steps[2]/GITHUB_ENV' in job.commandFiles);

  const messages = job.annotations.map((a) => `${a.level}:${a.message.split('.')[0]}`);
  assert.ok(messages.includes("warning:Unexpected input(s) 'unknown', valid inputs are ['who', 'greeting', 'token', 'run-label', 'display name', 'mode']"), messages.join('\n'));
  const warning = job.annotations.find((a) => a.message === 'careful\nnow')!;
  assert.deepEqual([warning.level, warning.step, warning.properties], ['warning', 'main', { file: 'main.js', line: '3' }]);
  assert.ok(job.annotations.some((a) => /`set-output` command is deprecated/.test(a.message)));
  assert.ok(!job.annotations.some((a) => a.message === 'not a command while stopped'), 'stop-commands');
  assert.deepEqual(job.orphans, []);
  assert.equal(fs.existsSync(job.runnerTemp), false, 'RUNNER_TEMP emptied at job end');
});

test('an action written with the real @actions/core 3 round-trips through the harness', async () => {
  const actionDir = throwaway({
    'action.yml': 'name: core\ninputs:\n  policy:\n    required: true\n  level:\n    default: info\nruns:\n  using: node24\n  main: main.mjs\n  post: post.mjs\n',
    'main.mjs': `import * as core from ${JSON.stringify(CORE)};
const policy = core.getInput('policy', { required: true });
core.setSecret('hunter2');
core.setOutput('policy', policy);
core.setOutput('json', { a: [1, 2] });
core.setOutput('level', core.getInput('level'));
core.exportVariable('GATEWAY_URL', 'postgres://127.0.0.1:6432');
core.saveState('pid', 1234);
core.addPath('/opt/gateway/bin');
await core.summary.addHeading('Gateway').addRaw('ok').write();
core.warning('heads up', { title: 'T' });
core.info('password hunter2');
`,
    'post.mjs': `import * as core from ${JSON.stringify(CORE)};
core.setOutput('post-pid', core.getState('pid'));
core.setOutput('post-url', process.env.GATEWAY_URL);
core.setOutput('post-path', process.env.PATH.split(':')[0]);
`,
  });
  const job = await run({ actionDir, inputs: { policy: 'policy.yml' }, env: {}, steps: ['echo "url=$GATEWAY_URL"'] });
  assert.equal(job.main.status, 0, job.main.stderr);
  assert.deepEqual(job.outputs, { policy: 'policy.yml', json: '{"a":[1,2]}', level: 'info' });
  assert.deepEqual(job.post!.outputs, { 'post-pid': '1234', 'post-url': 'postgres://127.0.0.1:6432', 'post-path': '/opt/gateway/bin' });
  assert.deepEqual(job.exportedEnv, { GATEWAY_URL: 'postgres://127.0.0.1:6432' });
  assert.deepEqual(job.state, { pid: '1234' });
  assert.deepEqual(job.paths, ['/opt/gateway/bin']);
  assert.deepEqual(job.masks, ['hunter2']);
  assert.match(job.summary, /<h1>Gateway<\/h1>\s*ok/);
  assert.equal(job.steps[0]!.stdout.trim(), 'url=postgres://127.0.0.1:6432');
  assert.match(job.log, /password \*\*\*/);
  assert.ok(job.annotations.some((a) => a.level === 'warning' && a.message === 'heads up' && a.properties.title === 'T'));
});

test('a failing main skips the steps (not `if: always()`), post still runs; bad file commands fail a step', async () => {
  const actionDir = throwaway();
  const job = await run({
    actionDir, inputs: { who: 'bob', mode: 'fail' }, env: JOB_ENV,
    steps: ['echo never', { run: 'echo always', if: 'always()' }, { run: 'echo on-failure', if: 'failure()' }],
  });
  assert.equal(job.main.status, 1);
  assert.equal(job.main.outcome, 'failure');
  assert.deepEqual(job.steps.map((s) => s.outcome), ['skipped', 'success', 'success']);
  assert.equal(job.steps[1]!.stdout, 'always\n');
  assert.equal(job.post?.outcome, 'success');
  assert.equal(job.post!.outputs['post-state'], 'yes');
  assert.equal(job.failed, true);

  const bad = await run({
    actionDir, inputs: { who: 'bob' }, env: JOB_ENV,
    steps: ['printf "X<<EOF\\nunterminated\\n" >> "$GITHUB_OUTPUT"', { run: 'echo "NODE_OPTIONS=--require=/tmp/evil.js" >> "$GITHUB_ENV"', if: 'always()' }, { run: 'exit 3', if: 'always()' }],
  });
  assert.deepEqual(bad.steps.map((s) => [s.status, s.outcome]), [[0, 'failure'], [0, 'failure'], [3, 'failure']]);
  const errors = bad.annotations.filter((a) => a.level === 'error').map((a) => `${a.step}: ${a.message}`);
  assert.deepEqual(errors, [
    "steps[0]: Unable to process file command 'output' successfully.",
    "steps[0]: Invalid value. Matching delimiter not found 'EOF'",
    "steps[1]: Unable to process file command 'env' successfully.",
    "steps[1]: Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command.",
    'steps[2]: Process completed with exit code 3.',
  ]);
  assert.equal(bad.exportedEnv.NODE_OPTIONS, undefined);
});

test('cancellation: the running step gets SIGINT, then SIGKILL if it ignores it; the rest is skipped, post runs', async () => {
  const actionDir = throwaway();
  const graceful = await run({
    actionDir, inputs: { who: 'carol' }, env: JOB_ENV, cancelAfterStep: 1, cancelDelayMs: 500,
    steps: [
      'echo first',
      { run: 'trap \'echo "got INT"; exit 130\' INT\necho waiting\nsleep 30 >/dev/null 2>&1 &\nwait $!', killAfterMs: 4000 },
      'echo never',
      { run: 'echo cleanup-after-cancel', if: 'cancelled()' },
    ],
  });
  assert.equal(graceful.cancelled, true);
  assert.deepEqual(graceful.steps.map((s) => s.outcome), ['success', 'cancelled', 'skipped', 'success']);
  assert.equal(graceful.steps[1]!.stdout, 'waiting\ngot INT\n');
  assert.equal(graceful.steps[1]!.status, 130);
  assert.ok(graceful.steps[1]!.durationMs < 2500, `SIGINT was honoured at once (${graceful.steps[1]!.durationMs} ms)`);
  assert.equal(graceful.steps[3]!.stdout, 'cleanup-after-cancel\n');
  assert.equal(graceful.post?.outcome, 'success', 'post runs after a cancellation');
  assert.equal(graceful.post!.outputs['post-state'], 'yes', 'and sees the state main saved');
  // Only the step's shell got the signal (as on GitHub); its background `sleep` is an orphan.
  assert.equal(graceful.orphans.length, 1);
  assert.match(graceful.orphanDetails[0]!.cmdline, /^sleep 30/);
  assert.ok(!alive(graceful.orphans[0]!));

  const stubborn = await run({
    actionDir, inputs: { who: 'carol' }, env: JOB_ENV, cancelAfterStep: 0, cancelDelayMs: 500,
    steps: [{ run: "trap '' INT TERM\necho ignoring\nwhile true; do sleep 0.1; done", killAfterMs: 800 }, 'echo never'],
  });
  assert.equal(stubborn.steps[0]!.signal, 'SIGKILL');
  assert.equal(stubborn.steps[0]!.outcome, 'cancelled');
  assert.ok(stubborn.steps[0]!.durationMs >= 850 && stubborn.steps[0]!.durationMs < 5000, String(stubborn.steps[0]!.durationMs));
  assert.equal(stubborn.steps[1]!.outcome, 'skipped');
  assert.equal(stubborn.post?.outcome, 'success');

  // Cancelled while main itself runs (-1): post still runs.
  const inMain = await run({ actionDir, inputs: { who: 'carol', mode: 'slow' }, env: JOB_ENV, cancelAfterStep: -1, steps: ['echo never'] });
  assert.equal(inMain.main.outcome, 'cancelled');
  assert.equal(inMain.main.signal, 'SIGINT');
  assert.equal(inMain.steps[0]!.outcome, 'skipped');
  assert.equal(inMain.post?.outcome, 'success');
});

test('a step past its timeout is interrupted and fails', async () => {
  const actionDir = throwaway();
  const job = await run({ actionDir, inputs: { who: 'dan' }, env: JOB_ENV, streamWaitMs: 300, steps: [{ run: 'sleep 20', timeoutMs: 200, killAfterMs: 400 }, 'echo never'] });
  assert.equal(job.steps[0]!.outcome, 'failure');
  // bash defers SIGINT while its foreground `sleep` runs and dies of SIGTERM; the runner never
  // signals the `sleep`, which keeps the step's stdout open and is an orphan at job end.
  assert.equal(job.steps[0]!.signal, 'SIGTERM');
  assert.equal(job.steps[0]!.streamsHeldOpen, true);
  assert.deepEqual(job.orphanDetails.map((o) => o.cmdline), ['sleep 20']);
  assert.ok(job.annotations.some((a) => a.step === 'steps[0]' && /timed out/.test(a.message)));
  assert.equal(job.steps[1]!.outcome, 'skipped');
  assert.equal(job.post?.outcome, 'success');
});

test('detached daemons left behind are found after post and killed, even one that clears RUNNER_TRACKING_ID', async () => {
  const actionDir = throwaway();
  const job = await run({ actionDir, inputs: { who: 'erin', mode: 'daemon' }, env: JOB_ENV, steps: ['nohup sleep 60 >/dev/null 2>&1 &'] });
  const [a, b] = job.outputs.daemons!.split(' ').map(Number) as [number, number];
  assert.deepEqual(new Set(job.orphans), new Set([a, b, ...job.orphanDetails.filter((o) => /^sleep 60/.test(o.cmdline)).map((o) => o.pid)]));
  assert.equal(job.orphans.length, 3);
  assert.equal(job.orphanDetails.find((o) => o.pid === a)!.runnerWouldKill, true);
  assert.equal(job.orphanDetails.find((o) => o.pid === b)!.runnerWouldKill, false, 'escaped the runner, not the harness');
  for (const pid of job.orphans) assert.ok(!alive(pid), `orphan ${pid} was killed`);
  assert.ok(job.annotations.some((x) => x.step === 'runner' && /Cleaning up orphan processes/.test(x.message)));
});

test('a background process holding stdout delays the step like on GitHub', async () => {
  const actionDir = throwaway();
  const job = await run({
    actionDir, inputs: { who: 'fay' }, env: JOB_ENV, streamWaitMs: 600,
    steps: ['sleep 30 &', 'sleep 30 >/dev/null 2>&1 &'],
  });
  assert.equal(job.steps[0]!.streamsHeldOpen, true);
  assert.ok(job.steps[0]!.durationMs >= 550, String(job.steps[0]!.durationMs));
  assert.equal(job.steps[1]!.streamsHeldOpen, false);
  assert.ok(job.steps[1]!.durationMs < 500, String(job.steps[1]!.durationMs));
  assert.equal(job.orphans.length, 2);
});

test('an input default with an expression the harness cannot evaluate is a clear error', async () => {
  const actionDir = throwaway({ 'action.yml': ACTION_YML.replace('${{ github.token }}', '${{ secrets.MY_TOKEN }}') });
  await assert.rejects(run({ actionDir, inputs: { who: 'x' }, env: JOB_ENV, steps: [] }), /default of input 'token' uses \$\{\{ secrets\.MY_TOKEN \}\}, which this harness cannot evaluate/);
  const noToken = throwaway();
  await assert.rejects(run({ actionDir: noToken, inputs: { who: 'x' }, env: {}, steps: [] }), /env\.GITHUB_TOKEN is not given/);
});
