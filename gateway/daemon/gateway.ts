// One gateway run: the session log, one listener per target, the connection environment, and a
// graceful stop that seals the log. Used in-process by `run` and by the detached daemon.
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { SessionLogWriter, LOG_FORMAT } from '../evidence/log-writer.ts';
import { Recorder } from '../core/recorder.ts';
import type { Policy } from '../config/policy.ts';
import { policyRecord } from '../config/policy-source.ts';
import type { Identity } from '../identity/local.ts';
import type { Claims } from '../policy/engine.ts';
import type { ConnectionExport, CoreServices, Listener } from '../core/adapter.ts';
import path from 'node:path';
import { VERSION } from '../version.ts';
import { ApprovalBroker } from '../approval/broker.ts';
import { LocalApprover } from '../approval/local.ts';
import { Masker } from '../masking/engine.ts';
import { approvalSocketPath, ensureRuntimeDir } from './runtime-dir.ts';
import { serveControlAt, type ControlReply, type ControlRequest } from './control.ts';
import type net from 'node:net';
import fs from 'node:fs';
import { CheckpointSigner } from '../evidence/checkpoint.ts';
import { attest, claimsOf } from '../identity/key-binding.ts';
import { credentials } from './credentials.ts';
import { Egress } from '../egress/egress.ts';
import { ConfinedCommands } from './confined-commands.ts';
import { GitHubApprover, githubJobFromEnv } from '../approval/github-approver.ts';
import { RepoClient } from '../github/repo-client.ts';
import type { Renderer } from '../evidence/renderers.ts';

export interface GatewayOptions {
  policy: Policy;
  logDir: string;
  identity: Identity;
  /** Claims rules match on (ref, environment, actor, event). */
  claims?: Claims;
  /** Where upstream passwords come from; defaults to the process environment. */
  env?: NodeJS.ProcessEnv;
  /** The runner's environment, for the OIDC token that binds the signing key; defaults to process.env. */
  runnerEnv?: NodeJS.ProcessEnv;
  /** How approvers show each protocol's held commands; default: the renderers of the policy's adapters. */
  renderers?: readonly Renderer[];
}

export class ConfigurationError extends Error {}

/** A ConnectionExport whose files are written, each with its path. */
export interface ExportedConnection extends Omit<ConnectionExport, 'files'> { files: { name: string; path: string; mode: number; content: string }[] }

/** `head` is the seal's hash: whoever holds it can tell this log from a file put in its place. */
export interface StopResult { log: string; sealError: string | null; head: string; records: number }

const STOP_GRACE_MS = 30_000;

export class Gateway {
  readonly runId: string;
  readonly writer: SessionLogWriter;
  /** The signing key's thumbprint and whether an OIDC token binds it, for whoever started the daemon. */
  key = { thumbprint: '', attested: false };
  private readonly listeners: Listener[] = [];
  /** Every loopback address the listeners serve (a confined command's namespace gets each). */
  private readonly served: string[] = [];
  private confinedCommands: ConfinedCommands | null = null;
  private recorder: Recorder | null = null;
  private readonly startedAt = Date.now();
  private stopped: Promise<StopResult> | null = null;
  private approvals: { broker: ApprovalBroker; local: LocalApprover; server: net.Server; socket: string; github: boolean } | null = null;

  private constructor(runId: string, writer: SessionLogWriter) {
    this.runId = runId;
    this.writer = writer;
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const runId = randomBytes(6).toString('hex');
    // The private key never leaves this process; the token proves which job held it.
    const signer = new CheckpointSigner();
    const attestation = await attest(signer, opts.runnerEnv ?? process.env);
    const claims = claimsOf(attestation, opts.claims ?? {});
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const writer = SessionLogWriter.create(opts.logDir, `gateway-${stamp}-${runId}.jsonl`);
    const gw = new Gateway(runId, writer);
    gw.key = { thumbprint: signer.thumbprint, attested: attestation !== 'unattested' };
    const checkpoints = opts.policy.sessionLog.checkpoints;
    writer.signWith(runId, signer, checkpoints);
    const recorder = new Recorder(writer, { sampleRows: opts.policy.sessionLog.sampleRows });
    gw.recorder = recorder;
    writer.append('run-start', {
      format: LOG_FORMAT,
      run: runId,
      gateway: { version: VERSION, node: process.version },
      host: os.hostname(),
      pid: process.pid,
      policy: policyRecord(opts.policy),
      identity: opts.identity,
      ...(opts.policy.hasRuleSettings ? { claims, rules: { count: opts.policy.rules.rules.length, default: opts.policy.rules.default, unclassified: opts.policy.rules.unclassified } } : {}),
      ...(opts.policy.masking ? { masking: { columns: opts.policy.masking.columns, detectors: opts.policy.masking.detectors, ...(opts.policy.masking.jsonFields?.length ? { json_fields: opts.policy.masking.jsonFields } : {}), apply_to: Object.entries(opts.policy.masking.applyTo).filter(([, v]) => v).map(([k]) => k) } } : {}),
      targets: opts.policy.targets.map((t) => opts.policy.adapters.find((a) => a.kind === t.kind)!.describe(t)),
      ...(opts.policy.egress.length ? { egress: opts.policy.egress.map((e) => ({ host: e.host, ports: e.ports })) } : {}),
      key: { alg: 'EdDSA', jwk: signer.jwk, thumbprint: signer.thumbprint },
      checkpoints: { every_records: checkpoints.everyRecords, every_ms: checkpoints.everyMs },
      attestation,
    });
    // The run's identity, policy and targets are signed before anything else happens.
    writer.signNow();
    const failure = writer.flushSync();
    if (failure) throw failure;
    try {
      const broker = await gw.serveApprovals(opts);
      const core: CoreServices = {
        recorder,
        policy: opts.policy.hasRuleSettings ? { rules: opts.policy.rules, claims } : null,
        approvals: broker,
        masker: opts.policy.masking ? new Masker(opts.policy.masking) : null,
        credentials: credentials(opts.env ?? process.env, opts.runnerEnv ?? process.env),
        egress: new Egress(opts.policy.egress, recorder),
      };
      const egress = opts.policy.egress.length > 0;
      if (egress && !opts.policy.adapters.some((a) => a.carriesEgress)) throw new ConfigurationError('the policy declares egress, but none of this gateway\'s adapters carries it (a forward proxy)');
      // Each adapter serves the targets of its kind; an adapter no target needs is never asked,
      // except the one that carries declared egress (its forward proxy).
      for (const adapter of opts.policy.adapters) {
        const targets = opts.policy.targets.filter((t) => t.kind === adapter.kind);
        if (targets.length === 0 && !(egress && adapter.carriesEgress)) continue;
        for (const listener of await adapter.listeners(targets, core)) {
          gw.listeners.push(listener);
          const address = await listener.listen();
          gw.served.push(...(listener.addresses?.() ?? [address]));
          for (const target of listener.targets) writer.append('listener', { target, listen: address });
        }
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

  /**
   * What later steps need to reach the targets through the gateway: every listener's variables,
   * the secret values among them, and files written (mode as declared) into `stateDir`.
   */
  exportConnection(stateDir: string): ExportedConnection {
    const out = { env: {} as Record<string, string>, secrets: [] as string[], files: [] as { name: string; path: string; mode: number; content: string }[] };
    for (const l of this.listeners) {
      const c = l.connection(stateDir);
      for (const [k, v] of Object.entries(c.env)) {
        if (k in out.env) throw new Error(`two listeners export ${k}`);
        out.env[k] = v;
      }
      out.secrets.push(...c.secrets);
      for (const f of c.files) {
        const file = path.join(stateDir, f.name);
        fs.writeFileSync(file, f.content, { mode: f.mode });
        fs.chmodSync(file, f.mode); // an older file keeps its mode otherwise
        out.files.push({ ...f, path: file });
      }
    }
    return out;
  }

  /** Variables that must not reach the commands run through the gateway (upstream secrets). */
  secretEnvNames(policy: Policy): string[] {
    return [...policy.targets.flatMap((t) => t.secretEnv), GITHUB_TOKEN_SECRET];
  }

  /**
   * Finishes in-flight commands, closes sessions, seals the log. `sealError` says why the log
   * could not be sealed (it failed earlier, or the final write failed): callers must fail then.
   */
  stop(reason = 'stopped', graceMs = STOP_GRACE_MS): Promise<StopResult> {
    this.stopped ??= (async () => {
      // Held commands are denied now rather than when the grace period runs out.
      this.approvals?.broker.withdrawAll('the gateway is stopping');
      this.confinedCommands?.closeAll();
      await Promise.all(this.listeners.map((l) => l.stop(graceMs)));
      // Sessions still logging in when the listeners closed.
      for (const s of this.recorder?.open ?? []) s.close('gateway shutdown');
      if (this.approvals) {
        this.approvals.server.close();
        fs.rmSync(this.approvals.socket, { force: true });
      }
      try {
        this.writer.close('run-end', { run: this.runId, reason, duration_ms: Date.now() - this.startedAt, records: this.writer.nextSeq + 1 });
        return { log: this.writer.path, sealError: null, head: this.writer.head, records: this.writer.nextSeq };
      } catch (e) {
        return { log: this.writer.path, sealError: (e as Error).message, head: this.writer.head, records: this.writer.nextSeq };
      }
    })();
    return this.stopped;
  }

  /**
   * When the policy can hold commands: the broker, the local approver, and a control socket in
   * the user's runtime directory where `gateway-action approve|deny|pending` find this run.
   */
  private async serveApprovals(opts: GatewayOptions): Promise<ApprovalBroker | null> {
    const policy = opts.policy;
    if (!policyCanHold(policy)) return null;
    const local = new LocalApprover();
    const job = githubJobFromEnv(opts.runnerEnv ?? process.env);
    const token = (opts.env ?? process.env)[GITHUB_TOKEN_SECRET];
    let github: GitHubApprover | null = null;
    if (job) {
      // In a job, any step runs as the daemon's user: the local socket cannot tell a reviewer
      // from the pipeline itself, so approvals come from the pull request only.
      if (!token) throw new ConfigurationError(`the policy holds commands for approval, but the gateway has no GitHub token to ask on the pull request (the action passes its github-token input; with the CLI set ${GITHUB_TOKEN_SECRET})`);
      const [owner, repo] = job.repository.split('/') as [string, string];
      const client = new RepoClient({ owner, repo, token, apiUrl: (opts.runnerEnv ?? process.env).GITHUB_API_URL || 'https://api.github.com' });
      const record = (type: string, fields: Record<string, unknown>): void => {
        try {
          this.writer.append(type, fields);
        } catch {
          // The log failed: every held command is refused by the session anyway.
        }
      };
      const pollMs = Number((opts.runnerEnv ?? process.env).GATEWAY_ACTION_APPROVAL_POLL_MS) || undefined;
      github = new GitHubApprover({ client, settings: policy.approvals, job, record, pollMs, renderers: opts.renderers ?? opts.policy.adapters.flatMap((a) => (a.renderer ? [a.renderer] : [])) });
    }
    const broker = new ApprovalBroker({
      runId: this.runId,
      timeoutMs: policy.approvals.timeoutMs,
      approvers: github ? [github] : [local],
      ...(job ? { binding: `${job.repository}:${job.runId}:${job.attempt}` } : {}),
    });
    const socket = approvalSocketPath(this.runId, ensureRuntimeDir());
    const server = await serveControlAt(socket, async (req) => this.answerControl(req));
    this.approvals = { broker, local, server, socket, github: github !== null };
    const a = policy.approvals;
    this.writer.append('approvals', {
      approvers: github ? ['github'] : ['local'],
      timeout_ms: a.timeoutMs,
      control_socket: socket,
      ...(github ? { where: a.where.kind === 'issue' ? `issue:${a.where.number}` : 'pull-request', users: a.users, teams: a.teams, min_approvals: a.minApprovals, allow_self_approval: a.allowSelfApproval } : {}),
    });
    return broker;
  }

  /** Confined commands' bridges and records (gateway/confine/), made on first use. */
  get confined(): ConfinedCommands {
    return (this.confinedCommands ??= new ConfinedCommands(this.writer, ensureRuntimeDir(), () => [...this.served]));
  }

  /** The approval verbs of the control protocol (pending, approve, deny) and confined commands' (confine-open, confine-close). */
  async answerControl(req: ControlRequest): Promise<ControlReply> {
    if (req.op === 'confine-open') return { ok: true, ...(await this.confined.begin(req)) };
    if (req.op === 'confine-close') {
      this.confined.end(req.id, req);
      return { ok: true };
    }
    const a = this.approvals;
    if (req.op === 'pending') return { ok: true, run: this.runId, pending: a ? a.broker.pending() : [] };
    if (req.op === 'approve' || req.op === 'deny') {
      if (!a) return { ok: false, error: `this gateway (run ${this.runId}) holds no commands for approval` };
      if (a.github) return { ok: false, error: `this gateway (run ${this.runId}) takes verdicts on the pull request only: reply /${req.op} ${req.id} there` };
      const request = a.local.answer(req.id, req.op === 'approve' ? 'approved' : 'denied', req.op === 'deny' ? req.reason : undefined);
      return { ok: true, run: this.runId, request };
    }
    return { ok: false, error: 'unknown request' };
  }
}

/** The secret (over IPC, never the environment) that carries the token for PR-comment approvals. */
export const GITHUB_TOKEN_SECRET = 'GATEWAY_GITHUB_TOKEN';

/** Whether any decision of the policy can hold a command for approval. */
export function policyCanHold(policy: Policy): boolean {
  const r = policy.rules;
  return r.default === 'approve' || r.unclassified === 'approve' || r.rules.some((x) => x.action === 'approve');
}
