// The floor of a recording proxy written in Node, for the PostgreSQL benchmark: a bare socket pipe
// that also does the least the gateway's log needs per command, and nothing else. It frames both
// directions, writes a hash-chained `command` record for every Query and Execute before it
// forwards it (one log write per event-loop turn, as the gateway does), hashes each response and
// writes a `result` record with its tags, row count, columns and first row. No login of its own,
// no policy, no statement names, no masking, no approvals, no checks: it is not a gateway and
// must never be used as one. What it costs above the bare pipe is what any Node recording proxy
// pays before doing anything a gateway is for. Plain TCP on 127.0.0.1 only: no TLS, SSLRequest or
// GSSENCRequest (the benchmark connects with sslmode=disable).
// Usage: node recording-floor.ts <server port> <log file>
import net from 'node:net';
import fs from 'node:fs';
import { hash } from 'node:crypto';
import { jsonString } from '../../gateway/evidence/canonical-json.ts';

const port = Number(process.argv[2]);
const fd = fs.openSync(process.argv[3]!, 'wx', 0o600);
let stage = Buffer.allocUnsafe(1 << 16);
let staged = 0;
let seq = 0;
let prev = '0'.repeat(64);
let sessions = 0;
let lastMs = 0;
let lastIso = '';
const waiting: (() => void)[] = [];
let flushScheduled = false;

function now(): string {
  const ms = Date.now();
  if (ms !== lastMs) (lastMs = ms), (lastIso = new Date(ms).toISOString());
  return lastIso;
}


/** Appends a record: `body` is its canonical JSON (RFC 8785 member order) without `hash`. */
function append(body: string): void {
  if (staged + body.length * 3 + 80 > stage.length) {
    const grown = Buffer.allocUnsafe(stage.length * 2 + body.length * 3);
    stage.copy(grown, 0, 0, staged);
    stage = grown;
  }
  const n = stage.write(body, staged, 'utf8');
  const h = hash('sha256', stage.subarray(staged, staged + n), 'hex');
  staged += n - 1;
  staged += stage.write(',"hash":"' + h + '"}\n', staged, 'latin1');
  seq++;
  prev = h;
}

function flush(): void {
  let off = 0;
  while (off < staged) off += fs.writeSync(fd, stage, off, staged - off);
  staged = 0;
}

function whenWritten(then: () => void): void {
  waiting.push(then);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      flush();
      for (const w of waiting.splice(0)) w();
    });
  }
}

interface Pending { id: string; started: number; pieces: Buffer[]; bytes: number; rows: number; tags: string[]; columns: string | null; sample: string | null }

net.createServer((client) => {
  const session = 's' + ++sessions;
  const sessionJson = jsonString(session);
  const upstream = net.connect(port, '127.0.0.1');
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  let commands = 0;
  let started = false;
  let carry: Buffer | null = null;
  let serverCarry: Buffer | null = null;
  const statements = new Map<string, string>();
  const portals = new Map<string, string>();
  const pending: Pending[] = [];
  let held: Buffer[] | null = null;

  const command = (text: string): void => {
    const id = session + '.' + ++commands;
    append('{"command":"' + id + '","kind":"pg.query","prev":"' + prev + '","seq":' + seq + ',"session":' + sessionJson + ',"text":' + jsonString(text) + ',"time":"' + now() + '","type":"command"}');
    pending.push({ id, started: performance.now(), pieces: [], bytes: 0, rows: 0, tags: [], columns: null, sample: null });
  };
  const result = (p: Pending, transaction: string): void => {
    let tags = '';
    for (const t of p.tags) tags += (tags ? ',' : '') + jsonString(t);
    const sha = hash('sha256', p.pieces.length === 1 ? p.pieces[0]! : Buffer.concat(p.pieces), 'hex');
    append(
      '{"command":"' + p.id + '","count":' + p.rows + ',"details":{"tags":[' + tags + '],"transaction":"' + transaction + '"},"duration_us":' + Math.floor((performance.now() - p.started) * 1000) +
        ',"prev":"' + prev + '","response":{"bytes":' + p.bytes + (p.columns ? ',"columns":' + p.columns : '') + (p.sample ? ',"sample":[' + p.sample + ']' : '') + ',"sha256":"' + sha + '"},"seq":' + seq +
        ',"session":' + sessionJson + ',"status":"ok","time":"' + now() + '","type":"result"}',
    );
  };
  const cstring = (b: Buffer, at: number): [string, number] => {
    const end = b.indexOf(0, at);
    return [b.toString('utf8', at, end), end + 1];
  };

  client.on('data', (chunk: Buffer) => {
    let b = carry ? Buffer.concat([carry, chunk]) : chunk;
    carry = null;
    let at = 0;
    let recorded = false;
    if (!started) {
      if (b.length < 4 || b.length < b.readInt32BE(0)) return void (carry = Buffer.from(b));
      started = true;
      at = b.readInt32BE(0);
    }
    while (at + 5 <= b.length) {
      const end = at + 1 + b.readInt32BE(at + 1);
      if (end > b.length) break;
      const type = b[at];
      if (type === 0x51) {
        command(b.toString('utf8', at + 5, end - 1));
        recorded = true;
      } else if (type === 0x50) {
        const [name, next] = cstring(b, at + 5);
        statements.set(name, cstring(b, next)[0]);
      } else if (type === 0x42) {
        const [portal, next] = cstring(b, at + 5);
        portals.set(portal, statements.get(cstring(b, next)[0]) ?? '');
      } else if (type === 0x45) {
        command(portals.get(cstring(b, at + 5)[0]) ?? '');
        recorded = true;
      }
      at = end;
    }
    if (at < b.length) {
      carry = Buffer.from(b.subarray(at));
      b = b.subarray(0, at);
    }
    if (b.length === 0) return;
    if (held) return void held.push(b);
    if (!recorded) return void upstream.write(b);
    held = [b];
    whenWritten(() => {
      const out = held!;
      held = null;
      for (const o of out) upstream.write(o);
    });
  });

  upstream.on('data', (chunk: Buffer) => {
    client.write(chunk);
    let b = serverCarry ? Buffer.concat([serverCarry, chunk]) : chunk;
    serverCarry = null;
    let at = 0;
    let from = 0;
    while (at + 5 <= b.length) {
      const end = at + 1 + b.readInt32BE(at + 1);
      if (end > b.length) break;
      const p = pending[0];
      const type = b[at];
      if (p) {
        if (type === 0x44) {
          if (p.rows++ === 0) {
            const n = b.readInt16BE(at + 5);
            let v = at + 7;
            let row = '';
            for (let i = 0; i < n; i++) {
              const len = b.readInt32BE(v);
              row += (i ? ',' : '') + (len < 0 ? 'null' : jsonString(b.toString('utf8', v + 4, v + 4 + len)));
              v += 4 + Math.max(len, 0);
            }
            p.sample = '[' + row + ']';
          }
        } else if (type === 0x54) {
          const n = b.readInt16BE(at + 5);
          let v = at + 7;
          let names = '';
          for (let i = 0; i < n; i++) {
            const [name, next] = cstring(b, v);
            names += (i ? ',' : '') + jsonString(name);
            v = next + 18;
          }
          p.columns = '[' + names + ']';
        } else if (type === 0x43) p.tags.push(cstring(b, at + 5)[0]);
        else if (type === 0x5a) {
          const piece = b.subarray(from, end);
          p.pieces.push(piece);
          p.bytes += piece.length;
          from = end;
          pending.shift();
          result(p, String.fromCharCode(b[at + 5]!));
        }
      }
      at = end;
    }
    if (pending[0] && from < at) {
      pending[0].pieces.push(Buffer.from(b.subarray(from, at)));
      pending[0].bytes += at - from;
    }
    if (at < b.length) serverCarry = Buffer.from(b.subarray(at));
  });
  const end = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end).on('close', end);
  upstream.on('error', end).on('close', end);
}).listen(0, '127.0.0.1', function (this: net.Server) {
  process.stdout.write(String((this.address() as net.AddressInfo).port));
});
setInterval(() => staged > 0 && flush(), 20).unref();
process.on('SIGTERM', () => {
  flush();
  fs.closeSync(fd);
  process.exit(0);
});
