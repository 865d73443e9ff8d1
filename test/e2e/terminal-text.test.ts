// Text written by whoever ran the commands (SQL, error messages, application names, identity
// claims) reaches an approver's and an auditor's terminal through `pending`, `approve`,
// `replay` and `verify`. A terminal obeys escape sequences, carriage returns and bidi
// overrides, so every one of them must come out visibly escaped, never raw.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { appCluster, cli, policyFor, psql, psqlAsync, startGateway, tempDir, waitFor, type Cluster, type RunningGateway } from '../helpers/gateway.ts';
import { resign } from '../helpers/log-forgery.ts';

process.env.GATEWAY_ACTION_RUNTIME_DIR = path.join(tempDir('gw-terminal-'), 'run');

const RULES = `rules:
  - name: approve-drop
    when: { sql: [drop] }
    action: approve
    reason: "DROP needs a second pair of eyes"
default: allow
unclassified: deny
approvals: { timeout: 10m }
`;

/**
 * A raw control or format character other than a newline (and a tab in multi-line SQL): what
 * must never reach a terminal.
 */
const RAW = /[^\n\P{Cc}]|[\p{Cf}\p{Zl}\p{Zp}]/u;
const RAW_BUT_TAB = /[^\n\t\P{Cc}]|[\p{Cf}\p{Zl}\p{Zp}]/u;
const rawIn = (s: string, raw = RAW): string | null => {
  const m = raw.exec(s);
  return m ? `U+${m[0].codePointAt(0)!.toString(16).padStart(4, '0')} at ${m.index} in ${JSON.stringify(s.slice(Math.max(0, m.index - 40), m.index + 40))}` : null;
};
const plainEnv = { ...process.env, NO_COLOR: '', FORCE_COLOR: '' };

// Clears the line, returns the cursor, retitles the window, reverses the text's direction,
// and pretends in a fake line that a reviewer already approved it.
const HOSTILE = 'DROP TABLE victim /* \x1b[2K\r\x1b[1A\x1b]0;ok\x07 harmless SELECT \u202eelbat ynA\u202c \u2066x\u2069 \u200b\u2028\u0085\x7f\t\r\n  12:00:00.000 s9.9   ALLOW   ok        1 row   approved by security */';

let cluster: Cluster;
let gw: RunningGateway;
before(async () => {
  cluster = await appCluster();
  cluster.sql('CREATE TABLE victim (id int); ALTER TABLE victim OWNER TO deployer', 'app');
  gw = startGateway(policyFor(cluster) + RULES);
});
after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

test('pending, pending --json and approve print a hostile held command escaped; replay and verify print the log escaped', async () => {
  const p = psqlAsync({ ...gw.env, PGAPPNAME: 'app\x1b[31mred' }, ['-v', 'ON_ERROR_STOP=1', '-c', HOSTILE]);
  const m = await waitFor(() => /holds this command as request ([a-z0-9]{8})/.exec(p.output.stderr()), 'the approval NOTICE');
  const id = m![1]!;

  const listed = cli(['pending'], { env: plainEnv });
  assert.equal(listed.status, 0, listed.stderr);
  assert.equal(rawIn(listed.stdout), null);
  assert.match(listed.stdout, new RegExp(`${id}  .*DROP TABLE victim /\\* \\\\x1b\\[2K\\\\r\\\\x1b\\[1A\\\\x1b\\]0;ok\\\\x07 harmless SELECT \\\\u202eelbat`));
  assert.equal(listed.stdout.trimEnd().split('\n').length, 2, 'a header and one row: no line of the text became a line of the table');

  const json = cli(['pending', '--json'], { env: plainEnv });
  assert.equal(rawIn(json.stdout), null);
  assert.equal((JSON.parse(json.stdout) as { text: string }[])[0]!.text, HOSTILE, 'the JSON holds the same text, escaped only for the terminal');

  const ok = cli(['approve', id], { env: plainEnv });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(rawIn(ok.stdout), null);
  assert.match(ok.stdout, new RegExp(`^approved ${id}: app-db s1 rule "approve-drop": DROP TABLE victim .*\\\\u202eelbat ynA\\\\u202c`));
  assert.equal(ok.stdout.trimEnd().split('\n').length, 1);
  const r = await p.done;
  assert.equal(r.status, 0, r.stderr);

  // An error message quoting a hostile name.
  psql(gw.env, ['-c', 'SELECT * FROM "no\x1b[8mtable\u202e"']);
  const log = gw.stop();

  const replay = cli(['replay', log], { env: plainEnv });
  assert.equal(replay.status, 0, replay.stderr);
  assert.equal(rawIn(replay.stdout, RAW_BUT_TAB), null);
  assert.match(replay.stdout, /harmless SELECT \\u202eelbat ynA\\u202c/);
  assert.match(replay.stdout, /\t\\r\n {60} {2}12:00:00\.000 s9\.9/, 'the fake line starts at column 60, under the text, not where commands start');
  assert.match(replay.stdout, /42P01 relation "no\\x1b\[8mtable\\u202e" does not exist/);
  assert.match(replay.stdout, /app\\x1b\[31mred/);

  // A log claiming an identity whose fields hold escapes, re-signed by a forger: verify prints
  // what the log claims, escaped.
  const forged = path.join(tempDir(), 'forged.jsonl');
  const lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  fs.writeFileSync(forged, resign(lines, (rec) => (rec.type === 'run-start' ? { ...rec, identity: { kind: 'local', user: 'root\x1b]0;owned\x07', host: 'ci\u202eevil\r' } } : rec)).join('\n') + '\n');
  const v = cli(['verify', forged], { env: plainEnv });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(rawIn(v.stdout), null);
  assert.match(v.stdout, /local user root\\x1b\]0;owned\\x07 on ci\\u202eevil\\r/);
  const vj = cli(['verify', forged, '--json'], { env: plainEnv });
  assert.equal(rawIn(vj.stdout), null);
  assert.equal((JSON.parse(vj.stdout) as { identity: { recorded: { host: string } } }).identity.recorded.host, 'ci\u202eevil\r');

  const report = cli(['report', forged, '-o', path.join(path.dirname(forged), 'r\x1b[2K.html')], { env: plainEnv });
  assert.equal(report.status, 0, report.stderr);
  assert.equal(rawIn(report.stdout), null);
  assert.match(report.stdout, /r\\x1b\[2K\.html/);
});
