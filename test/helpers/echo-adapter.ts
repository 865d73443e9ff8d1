// A throwaway second protocol that uses the seam end to end, as the SSH, HTTP and Kubernetes
// adapters will: a line protocol whose every line is a command. `kind: echo` targets name an
// upstream line server; the adapter offers a `line` condition; each line is decided by the one
// policy engine, held through the core's holds (the client is told on a `#` line), recorded
// before it is forwarded, and the upstream's answer is masked by the masking engine and
// recorded. The first line a client sends must be the per-run token the adapter exports.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Adapter, ConnectionExport, CoreServices, Listener, TargetBase } from '../../gateway/core/adapter.ts';
import { decide, decisionRecord, type Decision } from '../../gateway/policy/engine.ts';
import { nameGlob } from '../../gateway/policy/glob.ts';
import { HeldCommand, type HoldPlan } from '../../gateway/core/hold.ts';
import { targetVariable } from '../../gateway/core/target-variable.ts';
import { fenced, type Renderer } from '../../gateway/evidence/renderers.ts';
import type { StreamMasker } from '../../gateway/masking/stream-masker.ts';

export interface EchoTarget extends TargetBase { kind: 'echo'; host: string; port: number }

interface LineFacts { line: string }

/** How the evidence tools show echo lines: a shell-like line, answers counted in bytes. */
export const echoRenderer: Renderer = {
  kinds: 'echo.',
  protocol: 'echo lines',
  searchLabel: 'line',
  fence: 'sh',
  count: (n) => `${n} bytes`,
  line: (c) => `echo> ${c.text}`,
  notes: () => ['(an echo line)'],
  meta: () => ['echo line'],
  html: (c, esc) => `<pre class="cmd-text echo">echo&gt; ${esc(c.text)}</pre>`,
  markdown: (c) => fenced(`echo> ${c.text}`, 'sh'),
};

export const echoAdapter: Adapter<EchoTarget> = {
  kind: 'echo',
  targetSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['kind', 'host', 'port'],
    properties: {
      kind: { description: 'A line echo server (tests only).' },
      host: { description: 'Upstream host.', type: 'string', minLength: 1 },
      port: { description: 'Upstream port.', type: 'integer', minimum: 1, maximum: 65535 },
    },
  },
  conditions: [{
    key: 'line',
    schema: { description: 'Line globs; any of them.', type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    compile(raw, fail) {
      const globs = (raw as string[]).map((g, k) => (g.includes('?') ? fail(`bad line glob "${g}": only * is a wildcard`, [k]) : nameGlob(g)));
      return (f) => globs.some((g) => g((f as LineFacts).line));
    },
  }],
  parseTarget(name, raw, ctx) {
    if (raw.host === 'forbidden.example') ctx.fail(['host'], `targets.${name}.host: forbidden.example is not allowed`);
    return { name, kind: 'echo', host: String(raw.host), port: Number(raw.port), secretEnv: [], azure: false };
  },
  describe: (t) => ({ name: t.name, kind: t.kind, host: t.host, port: t.port }),
  renderer: echoRenderer,
  async listeners(targets, core) {
    return targets.map((t) => new EchoListener(t, core));
  },
};

class EchoListener implements Listener {
  readonly targets: readonly string[];
  private readonly server: net.Server;
  private readonly token = randomBytes(12).toString('hex');
  private readonly sockets = new Set<net.Socket>();
  private address = '';
  private readonly target: EchoTarget;
  private readonly core: CoreServices;

  constructor(target: EchoTarget, core: CoreServices) {
    this.target = target;
    this.core = core;
    this.targets = [target.name];
    this.server = net.createServer((s) => this.serve(s));
  }

  listen(): Promise<string> {
    return new Promise((resolve) => this.server.listen({ host: '127.0.0.1', port: 0 }, () => {
      this.address = `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
      resolve(this.address);
    }));
  }

  async stop(): Promise<void> {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }

  connection(): ConnectionExport {
    return {
      env: { [targetVariable(this.target.name, 'ECHO')]: this.address, [targetVariable(this.target.name, 'TOKEN')]: this.token },
      secrets: [this.token],
      files: [{ name: `${this.target.name}.echo`, content: `${this.address}\n`, mode: 0o600 }],
    };
  }

  private serve(client: net.Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    const rec = this.core.recorder.openSession(this.target.name, 'echo', { client: { address: client.remoteAddress } });
    const upstream = net.connect(this.target.port, this.target.host);
    upstream.on('error', () => client.destroy());
    // The upstream's answers are one stream per session, masked across chunk boundaries.
    const masker = this.core.masker;
    const answers = masker?.applyTo.client ? masker.stream() : null;
    client.on('close', () => {
      upstream.destroy();
      rec.close('client closed');
    });
    let authenticated = false;
    let buffered = '';
    // One line at a time: the next is read once the previous one's answer came back.
    const queue: string[] = [];
    let busy = false;
    const next = (): void => {
      if (busy || queue.length === 0) return;
      busy = true;
      void this.run(queue.shift()!, rec, client, upstream, answers).finally(() => {
        busy = false;
        next();
      });
    };
    client.on('data', (d: Buffer) => {
      buffered += d.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!authenticated) {
          if (line !== this.token) return void client.end('# bad token\n');
          authenticated = true;
          continue;
        }
        queue.push(line);
      }
      next();
    });
  }

  private async run(line: string, rec: ReturnType<CoreServices['recorder']['openSession']>, client: net.Socket, upstream: net.Socket, answers: StreamMasker | null): Promise<void> {
    const policy = this.core.policy;
    const decision: Decision | null = policy ? decide(policy.rules, { kind: 'echo', target: this.target.name, units: [{ line }] }, policy.claims) : null;
    // What the log and the approval request show: with the detectors' findings masked.
    const masker = this.core.masker;
    const shown = masker?.applyTo.log ? (masker.maskText(line)?.text ?? line) : line;
    const cmd = rec.beginCommand({ kind: 'echo.line', text: shown, ...(decision ? { decision: decisionRecord(decision) } : {}) });
    // Forwarded only once the record is written (one write per event-loop turn for all sessions).
    if (await new Promise((written) => rec.writer.whenWritten(written))) return void client.destroy();
    const refuse = (d: Decision): void => {
      client.write(`# denied by rule "${d.rule}": ${d.reason}\n`);
      cmd.finish({ status: 'denied', rule: d.rule, reason: d.reason });
    };
    if (decision?.action === 'deny') return refuse(decision);
    if (decision?.action === 'approve') {
      const broker = this.core.approvals!;
      const verdict = await new Promise<Decision | null>((resolve) => {
        const plan: HoldPlan<Decision> = { decision, cmd, text: shown, approved: () => undefined, denied: (d) => d };
        const held = new HeldCommand(plan, [Buffer.from(`${line}\n`)], broker, rec, (message) => client.write(`# ${message}\n`));
        void held.pending.verdict.then((v) => resolve(held.settle(v, rec)));
      });
      if (verdict) return refuse(verdict);
    }
    // The answer is read in chunks of at most 7 bytes, as a slow upstream would send it: a secret
    // is cut across chunks, and the stream masker must still mask it. The line's answer ends at
    // its newline, where the stream is flushed.
    const expected = Buffer.byteLength(line) + 1;
    await new Promise<void>((resolve) => {
      let got = 0;
      const onData = (d: Buffer): void => {
        for (let i = 0; i < d.length; i += 7) {
          const piece = d.subarray(i, i + 7);
          got += piece.length;
          const out = answers ? answers.push(piece) : { bytes: piece, values: 0, detectors: [] };
          if (out.values > 0) cmd.noteMasked(0, out.detectors);
          client.write(out.bytes);
          cmd.addResponse(out.bytes);
        }
        if (got >= expected) {
          upstream.off('data', onData);
          const rest = answers?.flush();
          if (rest && rest.bytes.length) {
            client.write(rest.bytes);
            cmd.addResponse(rest.bytes);
            if (rest.values > 0) cmd.noteMasked(0, rest.detectors);
          }
          resolve();
        }
      };
      upstream.on('data', onData);
      upstream.write(`${line}\n`);
    });
    cmd.finish({ status: 'ok' });
  }
}

/** The upstream: a line server that answers each line with itself. */
export function echoServer(): Promise<{ port: number; close(): void }> {
  const server = net.createServer((s) => s.on('data', (d) => s.write(d)).on('error', () => s.destroy()));
  return new Promise((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve({ port: (server.address() as net.AddressInfo).port, close: () => server.close() })));
}
