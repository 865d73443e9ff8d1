// One gateway run: the session log, one listener per target, the connection environment, and a
// graceful stop that seals the log. Used in-process by `run` and by the detached daemon.
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { SessionLogWriter, LOG_FORMAT } from '../evidence/log-writer.ts';
import { Recorder } from '../core/recorder.ts';
import { PostgresListener } from '../postgres/listener.ts';
import { envName, type Policy } from '../config/policy.ts';
import type { Identity } from '../identity/local.ts';
import type { Claims } from '../policy/engine.ts';
import { loadClassifier } from '../postgres/sql-classifier.ts';
import { VERSION } from '../version.ts';

export interface GatewayOptions {
  policy: Policy;
  logDir: string;
  identity: Identity;
  /** Claims rules match on (ref, environment, actor, event). */
  claims?: Claims;
  /** Where upstream passwords come from; defaults to the process environment. */
  env?: NodeJS.ProcessEnv;
}

export class ConfigurationError extends Error {}

export interface StopResult { log: string; sealError: string | null }

const STOP_GRACE_MS = 30_000;

export class Gateway {
  readonly runId: string;
  readonly writer: SessionLogWriter;
  private readonly listeners: { listener: PostgresListener; port: number; password: string }[] = [];
  private recorder: Recorder | null = null;
  private readonly startedAt = Date.now();
  private stopped: Promise<StopResult> | null = null;

  private constructor(runId: string, writer: SessionLogWriter) {
    this.runId = runId;
    this.writer = writer;
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    // Approvals are validated but not available yet: refuse rather than run with a policy that
    // promises a hold it cannot give.
    const r = opts.policy.rules;
    if (opts.policy.hasApprovals || r.default === 'approve' || r.unclassified === 'approve' || r.rules.some((x) => x.action === 'approve')) {
      throw new ConfigurationError(`${opts.policy.path}: this version enforces allow and deny but cannot hold commands for approval yet; remove action: approve (and approvals) to run the gateway`);
    }
    if (opts.policy.hasRuleSettings) await loadClassifier();
    const env = opts.env ?? process.env;
    const passwords = new Map<string, string>();
    for (const t of opts.policy.targets) {
      const v = env[t.auth.passwordEnv];
      if (v === undefined || v === '') {
        throw new ConfigurationError(`target "${t.name}": environment variable ${t.auth.passwordEnv} (auth.password-env) is not set`);
      }
      passwords.set(t.name, v);
    }
    const runId = randomBytes(6).toString('hex');
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const writer = SessionLogWriter.create(opts.logDir, `gateway-${stamp}-${runId}.jsonl`);
    const gw = new Gateway(runId, writer);
    const recorder = new Recorder(writer, { sampleRows: opts.policy.sessionLog.sampleRows });
    gw.recorder = recorder;
    writer.append('run-start', {
      format: LOG_FORMAT,
      run: runId,
      gateway: { version: VERSION, node: process.version },
      host: os.hostname(),
      pid: process.pid,
      policy: { path: opts.policy.path, sha256: opts.policy.sha256 },
      identity: opts.identity,
      ...(opts.policy.hasRuleSettings ? { claims: opts.claims ?? {}, rules: { count: opts.policy.rules.rules.length, default: opts.policy.rules.default, unclassified: opts.policy.rules.unclassified } } : {}),
      targets: opts.policy.targets.map((t) => ({ name: t.name, kind: t.kind, host: t.host, port: t.port, database: t.database, user: t.user, tls: t.tls })),
      attestation: 'unattested',
    });
    const failure = writer.flushSync();
    if (failure) throw failure;
    try {
      for (const target of opts.policy.targets) {
        const upstream = passwords.get(target.name)!;
        const password = randomBytes(24).toString('base64url');
        const policy = opts.policy.hasRuleSettings ? { rules: opts.policy.rules, claims: opts.claims ?? {} } : null;
        const listener = new PostgresListener({ target, clientPassword: password, upstreamPassword: async () => upstream, recorder, policy });
        const port = await listener.listen();
        gw.listeners.push({ listener, port, password });
        writer.append('listener', { target: target.name, listen: `127.0.0.1:${port}` });
      }
    } catch (e) {
      await gw.stop(`start failed: ${(e as Error).message}`, 0);
      throw e;
    }
    return gw;
  }

  get logPath(): string {
    return this.writer.path;
  }

  /** KEY=VALUE pairs later steps use to reach the targets through the gateway. */
  connectionEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    let first = true;
    for (const { listener, port, password } of this.listeners) {
      const t = listener.target;
      env[envName(t.name)] = `postgresql://${encodeURIComponent(t.user)}:${password}@127.0.0.1:${port}/${encodeURIComponent(t.database)}?sslmode=disable`;
      if (first) {
        Object.assign(env, { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: t.user, PGPASSWORD: password, PGDATABASE: t.database, PGSSLMODE: 'disable' });
        first = false;
      }
    }
    return env;
  }

  /** Variables that must not reach the commands run through the gateway (upstream secrets). */
  secretEnvNames(policy: Policy): string[] {
    return policy.targets.map((t) => t.auth.passwordEnv);
  }

  /**
   * Finishes in-flight commands, closes sessions, seals the log. `sealError` says why the log
   * could not be sealed (it failed earlier, or the final write failed): callers must fail then.
   */
  stop(reason = 'stopped', graceMs = STOP_GRACE_MS): Promise<StopResult> {
    this.stopped ??= (async () => {
      await Promise.all(this.listeners.map((l) => l.listener.stop(graceMs)));
      // Sessions still logging in when the listeners closed.
      for (const s of this.recorder?.open ?? []) s.close('gateway shutdown');
      try {
        this.writer.close('run-end', { run: this.runId, reason, duration_ms: Date.now() - this.startedAt, records: this.writer.nextSeq + 1 });
        return { log: this.writer.path, sealError: null };
      } catch (e) {
        return { log: this.writer.path, sealError: (e as Error).message };
      }
    })();
    return this.stopped;
  }

}
