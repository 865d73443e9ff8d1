// How the shipped CLI (dist/cli.js) reads its arguments, edge by edge: unknown options, missing
// values, `--name=value`, short aliases, repeated options, operands, and `--`. Every usage error is
// one line on stderr naming the verb and the option, with exit status 2.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli, tempDir } from '../helpers/gateway.ts';

const dir = tempDir('gw-cli-args-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A usage error: exit 2 and exactly `gateway-action: <message>` on stderr, nothing on stdout. */
function usageError(args: string[], message: string): void {
  const r = cli(args, { cwd: dir });
  assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  assert.equal(r.stderr, `gateway-action: ${message}\n`, args.join(' '));
  assert.equal(r.stdout, '');
}

test('an unknown option is named as typed, long or short, with the verb and where its usage is', () => {
  usageError(['run', '--polcy', 'x.yml', '--', 'true'], 'run: unknown option --polcy (see gateway-action run --help)');
  usageError(['run', '--polcy=x.yml', '--', 'true'], 'run: unknown option --polcy (see gateway-action run --help)');
  usageError(['verify', '-x', 'log.jsonl'], 'verify: unknown option -x (see gateway-action verify --help)');
  // An option of another verb is unknown here: approve has no --reason.
  usageError(['approve', 'abc123', '--reason', 'why'], 'approve: unknown option --reason (see gateway-action approve --help)');
  // Reported even next to --help, which would otherwise hide the typo.
  usageError(['start', '--help', '--verbose'], 'start: unknown option --verbose (see gateway-action start --help)');
});

test('an option without its value: at the end, empty, or followed by another option', () => {
  usageError(['run', '--policy'], 'run: --policy needs a value');
  usageError(['run', '--policy='], 'run: --policy needs a value');
  usageError(['run', '--policy', '', '--', 'true'], 'run: --policy needs a value');
  usageError(['report', 'log.jsonl', '-o'], 'report: -o needs a value');
  // The next option is not swallowed as the value (it would have become the policy file).
  usageError(['run', '--policy', '--log-dir', 'logs', '--', 'true'], 'run: --policy needs a value, not --log-dir (write --policy=VALUE for a value that starts with "-")');
  usageError(['deny', 'abc123', '--reason', '--state-dir', 'd'], 'deny: --reason needs a value, not --state-dir (write --reason=VALUE for a value that starts with "-")');
  // A flag takes none.
  usageError(['verify', '--json=yes', 'log.jsonl'], 'verify: --json takes no value');
});

test('--name=value and -o=value are read like --name value, and a value may then start with "-"', () => {
  // Values reach the verb: --issuer's is checked, and the message quotes it.
  usageError(['verify', '--issuer=not a url', 'log.jsonl'], '--issuer: not a url is not a URL');
  usageError(['verify', '--issuer=-dash', 'log.jsonl'], '--issuer: -dash is not a URL');
  // report's -o, -o=FILE and --output=FILE all name the output; the log is then what fails to read.
  for (const o of [['-o', 'r.html'], ['-o=r.html'], ['--output=r.html'], ['--output', 'r.html']]) {
    const r = cli(['report', 'missing.jsonl', ...o], { cwd: dir });
    assert.equal(r.status, 3, `${o.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^gateway-action: report: cannot read missing\.jsonl \(ENOENT\)\n$/);
  }
  usageError(['report', 'missing.jsonl'], 'report: -o FILE is required (see gateway-action report --help)');
});

test('a repeated option: the last one counts', () => {
  usageError(['verify', '--issuer', 'https://first.example', '--issuer', 'second', 'log.jsonl'], '--issuer: second is not a URL');
  const r = cli(['verify', '--issuer', 'nope', '--issuer', 'https://issuer.example', '--jwks', path.join(dir, 'none.json'), path.join(dir, 'missing.jsonl')], { cwd: dir });
  assert.equal(r.status, 3, r.stderr);
});

test('operands: how many each verb takes, and stray ones are refused', () => {
  usageError(['verify'], 'verify: give exactly one session log file (see gateway-action verify --help)');
  usageError(['verify', 'a.jsonl', 'b.jsonl'], 'verify: give exactly one session log file (see gateway-action verify --help)');
  usageError(['replay', 'a.jsonl', 'b.jsonl'], 'replay: give exactly one session log file (see gateway-action replay --help)');
  usageError(['approve'], 'approve: give exactly one request id (see gateway-action pending)');
  usageError(['deny', 'a', 'b'], 'deny: give exactly one request id (see gateway-action pending)');
  usageError(['pending', 'extra'], 'pending: unexpected argument "extra"');
  usageError(['stop', 'extra', '--state-dir', dir], 'stop: unexpected argument "extra" (see gateway-action stop --help)');
  usageError(['start', '--policy', 'p.yml', '--state-dir', dir, 'p2.yml'], 'start: unexpected argument "p2.yml" (see gateway-action start --help)');
  usageError(['run', '--policy', 'p.yml', 'psql', '--', 'true'], 'run: unexpected argument "psql"; put the command after `--`');
  // "-" alone is an operand, not an option.
  usageError(['verify', '-', 'x'], 'verify: give exactly one session log file (see gateway-action verify --help)');
});

test('--help and -h anywhere before `--`; after it they belong to the operands', () => {
  const help = cli(['verify', '--help']);
  for (const args of [['verify', 'log.jsonl', '-h'], ['verify', '--json', '--help', 'a', 'b']]) {
    const r = cli(args);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, help.stdout);
  }
  // After `--`, "-h" is a file name: the log that cannot be read.
  const r = cli(['verify', '--', '-h'], { cwd: dir });
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stdout + r.stderr, /-h/);
});

test('run: everything after the first `--` reaches the command verbatim, options and `--` included', () => {
  const policy = path.join(dir, 'gateway.yml');
  // No upstream is contacted until a client connects: port 1 is never dialled here.
  fs.writeFileSync(policy, 'version: 1\ntargets:\n  app-db:\n    kind: postgres\n    host: 127.0.0.1\n    port: 1\n    database: app\n    user: deployer\n    tls: disable\n    auth: { password-env: APP_DB_PASSWORD }\n');
  const argv = ['--help', '--policy=other.yml', '-h', '--', 'x y', '--log-dir'];
  const echo = path.join(dir, 'argv.mjs');
  fs.writeFileSync(echo, 'console.log(JSON.stringify(process.argv.slice(2)));\n');
  const r = cli(['run', '--policy', policy, '--log-dir', path.join(dir, 'logs'), '--', process.execPath, echo, ...argv], {
    cwd: dir,
    env: { ...process.env, APP_DB_PASSWORD: 'pw' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), argv);
  // A command missing after `--` is a usage error.
  usageError(['run', '--policy', policy, '--'], 'run: give the command to run after `--` (see gateway-action run --help)');
});
