// The protocol-sequence corpus (test/corpus/protocol-sequences.txt): each case's messages go
// through the gateway to a real server over a raw protocol connection, exactly as written and
// pipelined where the case says so; then the session's command records must be exactly the
// expected ones: the text the server ran (or the unclassified marker when the gateway cannot
// know it), the decision, and the outcome.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { serialize } from 'pg-protocol';
import { ROOT, appCluster, cli, policyFor, readLog, startGateway, type Cluster, type LogRecord, type RunningGateway } from '../helpers/gateway.ts';
import { RawClient } from '../helpers/raw-pg.ts';

const CORPUS = path.join(ROOT, 'test/corpus/protocol-sequences.txt');

const POLICY = `
rules:
  - name: no-unbounded-delete
    when: { sql: [delete-without-where] }
    action: deny
default: allow
unclassified: deny
`;

interface Expected { line: number; action: string; rule: string | null; status: string; classes: string[]; text: string | null; unclassifiedText: boolean }
interface Step { line: number; kind: string; message: Buffer | null; answers: number; expected: Expected | null }
interface Case { line: number; title: string; steps: Step[] }

const name = (n: string): string => (n === '_' ? '' : n);

/** A NAME as sent: `\xHH` is that byte (a name in a client encoding other than UTF-8), the rest UTF-8. */
const nameBytes = (n: string): Buffer => Buffer.concat(name(n).split(/(\\x[0-9a-fA-F]{2})/).map((p) => (/^\\x[0-9a-fA-F]{2}$/.test(p) ? Buffer.from([parseInt(p.slice(2), 16)]) : Buffer.from(p, 'utf8'))));
const cstr = (b: Buffer): Buffer => Buffer.concat([b, Buffer.from([0])]);
const int16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
function message(type: string, body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  const len = Buffer.alloc(4);
  len.writeInt32BE(b.length + 4);
  return Buffer.concat([Buffer.from(type), len, b]);
}
/** Messages of the extended protocol with names as raw bytes (pg-protocol's take strings). */
const wire = {
  parse: (n: string, text: string): Buffer => message('P', [cstr(nameBytes(n)), cstr(Buffer.from(text, 'utf8')), int16(0)]),
  bind: (portal: string, statement: string): Buffer => message('B', [cstr(nameBytes(portal)), cstr(nameBytes(statement)), int16(0), int16(0), int16(0)]),
  execute: (portal: string): Buffer => message('E', [cstr(nameBytes(portal)), Buffer.alloc(4)]),
  target: (type: 'D' | 'C', kind: string, n: string): Buffer => message(type, [Buffer.from(kind), cstr(nameBytes(n))]),
};

function parseExpected(line: number, raw: string, ownText: string | null, kind: string): Expected {
  const [head, ...rest] = raw.split(' | ');
  const [decision, status, ...classes] = head!.trim().split(/\s+/);
  const [action, rule] = decision!.split(':') as [string, string | undefined];
  if (!['allow', 'deny'].includes(action)) throw new Error(`${CORPUS}:${line}: unknown action "${action}"`);
  if (!['ok', 'error', 'skipped', 'denied'].includes(status ?? '')) throw new Error(`${CORPUS}:${line}: unknown status "${status}"`);
  for (const c of classes) if (!c.startsWith('+')) throw new Error(`${CORPUS}:${line}: expected +CLASS, got "${c}"`);
  const text = rest.length > 0 ? rest.join(' | ') : ownText;
  if (text === null && rule !== 'unclassified') throw new Error(`${CORPUS}:${line}: a ${kind} line names the text it expects`);
  // An unclassified record with a text of its own: a statement the gateway knows that does what
  // no statement describes (a query line's own text, or the TEXT written).
  const unclassifiedText = rule === 'unclassified' && (kind === 'query' || rest.length > 0);
  return { line, action, rule: rule ?? null, status: status!, classes: classes.map((c) => c.slice(1)), text, unclassifiedText };
}

function parseCorpus(text: string): Case[] {
  const cases: Case[] = [];
  let current: Case | null = null;
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const l = raw.trimEnd();
    if (l.trim() === '' || l.startsWith('#')) return;
    if (l.startsWith('== ')) {
      cases.push((current = { line, title: l.slice(3), steps: [] }));
      return;
    }
    if (!current) throw new Error(`${CORPUS}:${line}: a message before the first case`);
    const arrow = l.indexOf(' => ');
    const msg = arrow >= 0 ? l.slice(0, arrow) : l;
    const expect = arrow >= 0 ? l.slice(arrow + 4) : null;
    const [kind, ...args] = msg.split(' ');
    const after = (sep: string): string => msg.slice(msg.indexOf(sep) + sep.length);
    let message: Buffer | null = null;
    let own: string | null = null;
    let answers = 0;
    switch (kind) {
      case 'query':
        own = after('query ');
        message = serialize.query(own);
        answers = 1;
        break;
      case 'parse': {
        own = after(' | ');
        message = wire.parse(args[0]!, own);
        break;
      }
      case 'bind':
        message = wire.bind(args[0]!, args[1]!);
        break;
      case 'execute':
        message = wire.execute(args[0]!);
        break;
      case 'describe':
      case 'close':
        if (args[0] !== 'S' && args[0] !== 'P') throw new Error(`${CORPUS}:${line}: ${kind} S|P NAME`);
        message = wire.target(kind === 'describe' ? 'D' : 'C', args[0], args[1]!);
        break;
      case 'sync':
        message = serialize.sync();
        answers = 1;
        break;
      case 'wait':
        break;
      default:
        throw new Error(`${CORPUS}:${line}: unknown message "${kind}"`);
    }
    const expected = expect !== null ? parseExpected(line, expect, own, kind!) : kind === 'query' ? parseExpected(line, 'allow ok', own, kind) : null;
    current.steps.push({ line, kind: kind!, message, answers, expected });
  });
  return cases;
}

const cases = parseCorpus(fs.readFileSync(CORPUS, 'utf8'));

let cluster: Cluster;
let gw: RunningGateway;

before(async () => {
  cluster = await appCluster();
  cluster.sql("CREATE TABLE scratch (id int PRIMARY KEY, v text); INSERT INTO scratch SELECT g, 'row ' || g FROM generate_series(1, 100) g; ALTER TABLE scratch OWNER TO deployer", 'app');
  gw = startGateway(policyFor(cluster) + POLICY);
});
after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

/** Sends the steps, pipelined between waits, and reads every answer. */
async function run(c: Case, appName: string): Promise<void> {
  const client = await RawClient.connect(gw.env, appName);
  try {
    let batch: Buffer[] = [];
    let answers = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      assert.ok(answers > 0, `${CORPUS}:${c.line}: a wait after messages that are not answered without a Sync`);
      await client.roundTrip(batch);
      for (let i = 1; i < answers; i++) await client.roundTrip([]);
      batch = [];
      answers = 0;
    };
    for (const s of c.steps) {
      if (s.kind === 'wait') await flush();
      else {
        batch.push(s.message!);
        answers += s.answers;
      }
    }
    await flush();
  } finally {
    await client.end();
  }
}

function commandsOf(log: LogRecord[], appName: string): { command: LogRecord; result: LogRecord | undefined }[] {
  const session = log.find((r) => r.type === 'session-open' && r.client?.application_name === appName)?.session;
  assert.ok(session, `a session for ${appName}`);
  return log
    .filter((r) => r.type === 'command' && r.session === session)
    .map((command) => ({ command, result: log.find((r) => r.type === 'result' && r.command === command.command) }));
}

test('the corpus covers what the issue asks for', () => {
  assert.ok(cases.length >= 15, `${cases.length} cases`);
  const has = (re: RegExp, what: string): void => assert.ok(cases.some((c) => re.test(c.title)), `no case of ${what}`);
  has(/rejects/, 'a duplicate Parse the server rejects');
  has(/^SQL PREPARE, then a protocol Bind/, 'SQL PREPARE then protocol Bind/Execute');
  has(/^DEALLOCATE, a re-Parse/, 'DEALLOCATE, re-Parse, EXECUTE');
  has(/DISCARD ALL/, 'DISCARD ALL');
  has(/failed Parse of the unnamed/, 'the unnamed statement after a failed Parse');
  has(/^Close, then a Bind/, 'Close then Bind');
  has(/after COMMIT/, 'a portal after COMMIT');
  has(/after an error in its block/, 'a Parse skipped until Sync');
});

test('client: every sequence runs through the gateway', async (t) => {
  for (const [i, c] of cases.entries()) await t.test(`line ${c.line}: ${c.title}`, () => run(c, `seq-${i}`));
});

describe('what the sealed log recorded', () => {
  let log: LogRecord[] = [];
  let sealed = '';
  before(() => {
    sealed = gw.stop();
    log = readLog(sealed);
  });

  test('log: every sequence is logged with the text that ran and its decision', async (t) => {
    for (const [i, c] of cases.entries()) {
      await t.test(`line ${c.line}: ${c.title}`, () => {
        const expected = c.steps.filter((s) => s.expected).map((s) => s.expected!);
        const got = commandsOf(log, `seq-${i}`);
        const show = got.map((g) => `${g.command.decision?.action}:${g.command.decision?.rule} ${g.result?.status} | ${g.command.text}`).join('\n  ');
        assert.equal(got.length, expected.length, `${CORPUS}:${c.line}: ${got.length} command records, expected ${expected.length}:\n  ${show}`);
        got.forEach(({ command, result }, k) => {
          const e = expected[k]!;
          const where = `${CORPUS}:${e.line}`;
          assert.equal(command.decision?.action, e.action, `${where}: decision ${command.decision?.action}:${command.decision?.rule}, expected ${e.action}\n  ${show}`);
          if (e.rule) assert.equal(command.decision?.rule, e.rule, `${where}: rule ${command.decision?.rule}, expected ${e.rule}\n  ${show}`);
          assert.equal(result?.status, e.status, `${where}: status ${result?.status}, expected ${e.status}\n  ${show}`);
          if (e.rule === 'unclassified' && e.unclassifiedText) {
            assert.ok(typeof command.unclassified === 'string' && command.unclassified.length > 0, `${where}: the record says why it is unclassified`);
            assert.equal(command.text, e.text, `${where}: text`);
          } else if (e.rule === 'unclassified') {
            assert.ok(typeof command.unclassified === 'string' && command.unclassified.length > 0, `${where}: the record says why it is unclassified`);
            assert.match(command.text, /^-- unknown statement/, `${where}: an unknown statement is not logged as any text`);
          } else {
            assert.equal(command.unclassified, undefined, `${where}: not unclassified`);
            assert.equal(command.text, e.text, `${where}: text`);
          }
          for (const cls of e.classes) {
            assert.ok((command.facts ?? []).some((s: { classes: string[] }) => s.classes.includes(cls)), `${where}: class ${cls} in ${JSON.stringify(command.facts)}`);
          }
        });
      });
    }
  });

  test('log: the log verifies', () => {
    const r = cli(['verify', sealed]);
    assert.equal(r.status, 0, r.stderr);
  });
});
