// Approval by pull-request comment: a held command is posted on the PR with the exact text and
// the reply to type; reviewers answer `/approve ID` or `/deny ID reason`. One poller per gateway
// reads the comments (ETag-conditional, backing off when nothing changes or GitHub rate-limits)
// for every waiting request. Every reply considered is recorded with why it counted or not; any
// GitHub failure that leaves nowhere to ask denies the command (fail closed).
import type { Answer, ApprovalRequest, Approver, Verdict } from './broker.ts';
import { formatDuration } from './broker.ts';
import { checkReply, describePermission, permissionVerdict } from './reply-check.ts';
import { GitHubApiError, type IssueComment, type RepoClient, type RepoPermission } from '../github/repo-client.ts';
import type { ApprovalSettings } from '../config/policy.ts';
import { pullRequestOfEvent } from '../identity/github-oidc.ts';
import { rendererSet, type Renderer, type RendererSet } from '../evidence/renderers.ts';

export interface GitHubJob {
  repository: string; runId: string; attempt: string; actor: string; triggeringActor: string; sha: string;
  serverUrl: string; eventName: string;
  /** From the event payload for pull_request events. */
  pr: { number: number; author: string } | null;
}

export function githubJobFromEnv(env: NodeJS.ProcessEnv): GitHubJob | null {
  if (env.GITHUB_ACTIONS !== 'true' || !env.GITHUB_REPOSITORY) return null;
  const event = pullRequestOfEvent(env);
  const pr: GitHubJob['pr'] = event ? { number: event.number, author: event.author } : null;
  return {
    repository: env.GITHUB_REPOSITORY, runId: env.GITHUB_RUN_ID ?? '', attempt: env.GITHUB_RUN_ATTEMPT ?? '1',
    actor: env.GITHUB_ACTOR ?? '', triggeringActor: env.GITHUB_TRIGGERING_ACTOR ?? env.GITHUB_ACTOR ?? '',
    sha: env.GITHUB_SHA ?? '', serverUrl: env.GITHUB_SERVER_URL ?? 'https://github.com', eventName: env.GITHUB_EVENT_NAME ?? '', pr,
  };
}

interface Waiting {
  req: ApprovalRequest;
  answer: (a: Answer) => void;
  comment: { id: number; createdAt: string; url: string; body: string } | null;
  /** Counted approvals by lower-case login: the reply's record and the poll that checked its author. */
  approvals: Map<string, { reply: Record<string, unknown>; poll: number }>;
  seen: Set<number>;
  done: boolean;
}

type RecordFn = (type: string, fields: { [k: string]: unknown }) => void;

/** Whether a reply's author may approve, with the permission GitHub reported (when it answered). */
interface AuthorCheck { ok: boolean; why: string; transient?: boolean; permission?: RepoPermission }

const MAX_POLL_MS = 30_000;

export class GitHubApprover implements Approver {
  readonly name = 'github';
  private readonly client: RepoClient;
  private readonly settings: ApprovalSettings;
  private readonly job: GitHubJob;
  private readonly record: RecordFn;
  private readonly pollMs: number;
  /** How each protocol's command is shown in the comment (its code fence follows the protocol). */
  private readonly renderers: RendererSet;
  private readonly waiting = new Map<string, Waiting>();
  private where: Promise<{ issue: number; authors: string[] } | { error: string }> | null = null;
  /** The login the gateway comments as: its own comments never count, whatever its type. */
  private ownLogin: string | null = null;
  private polling = false;
  private etag: string | null = null;
  private since: string | null = null;
  /** Numbers the batches of replies weighed, so an approval knows how old its author check is. */
  private pollNo = 0;

  constructor(opts: { client: RepoClient; settings: ApprovalSettings; job: GitHubJob; record: RecordFn; pollMs?: number; renderers?: readonly Renderer[] }) {
    this.client = opts.client;
    this.settings = opts.settings;
    this.job = opts.job;
    this.record = opts.record;
    this.pollMs = opts.pollMs ?? 5000;
    this.renderers = rendererSet(opts.renderers);
  }

  instructions(req: ApprovalRequest): string {
    const url = this.waiting.get(req.id)?.comment?.url;
    return `a reviewer replies \`/approve ${req.id}\` or \`/deny ${req.id} REASON\` ${url ? `on ${url}` : 'on the pull request'}`;
  }

  open(req: ApprovalRequest, answer: (a: Answer) => void): void {
    const w: Waiting = { req, answer, comment: null, approvals: new Map(), seen: new Set(), done: false };
    this.waiting.set(req.id, w);
    void this.post(w);
  }

  settled(req: ApprovalRequest, v: Verdict): void {
    const w = this.waiting.get(req.id);
    this.waiting.delete(req.id);
    if (!w) return;
    w.done = true;
    if (!w.comment) return;
    const line = v.outcome === 'approved'
      ? `✅ **Approved** by ${v.by.split(',').map((b) => '@' + b.replace(/^github:/, '')).join(', ')} at ${v.at}; the command goes to the server.`
      : `⛔ **Denied**${v.by.startsWith('github:') ? ` by @${v.by.slice(7)}` : ` (${v.via})`} at ${v.at}${v.reason ? `: ${v.reason}` : ''}`;
    this.client.updateComment(w.comment.id, `${w.comment.body}\n\n---\n${line}`).catch((e: Error) => this.record('gateway-error', { target: req.target, message: `approval request ${req.id}: the verdict could not be written on the comment: ${e.message}` }));
  }

  private async post(w: Waiting): Promise<void> {
    const where = await (this.where ??= this.resolveWhere());
    if ('error' in where) return this.fail(w, where.error);
    const body = this.body(w.req, where.authors);
    try {
      const c = await this.client.createComment(where.issue, body);
      this.ownLogin = c.login.toLowerCase();
      if (w.done) return;
      w.comment = { id: c.id, createdAt: c.createdAt, url: c.url, body };
      this.since ??= new Date(Date.parse(c.createdAt) - 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      this.record('approval-comment', { session: w.req.session, command: w.req.command, id: w.req.id, issue: where.issue, comment_id: c.id, url: c.url });
      this.kick();
    } catch (e) {
      this.fail(w, (e as Error).message);
    }
  }

  /**
   * Where to ask: the run's PR, else the PR whose head the commit is, else the configured issue.
   * The authors of every PR the run belongs to may not approve, wherever the request is posted.
   */
  private async resolveWhere(): Promise<{ issue: number; authors: string[] } | { error: string }> {
    const w = this.settings.where;
    try {
      let pr: { number: number; authors: string[] } | null = null;
      if (this.job.pr) pr = { number: this.job.pr.number, authors: [this.job.pr.author || (await this.client.pull(this.job.pr.number)).author] };
      else if (this.job.sha) {
        const prs = await this.client.pullsForCommit(this.job.sha);
        if (prs[0]) pr = { number: prs[0].number, authors: prs.map((p) => p.author) };
      }
      const authors = (pr?.authors ?? []).filter(Boolean);
      if (w.kind === 'issue') return { issue: w.number, authors };
      if (pr) return { issue: pr.number, authors };
      return { error: `there is nowhere to ask for approval: this ${this.job.eventName || 'run'} has no pull request (commit ${this.job.sha.slice(0, 12)} belongs to none); set approvals.where: issue:NUMBER to ask on an issue` };
    } catch (e) {
      return { error: (e as Error).message };
    }
  }

  private fail(w: Waiting, why: string): void {
    if (w.done) return;
    this.record('gateway-error', { target: w.req.target, message: `approval request ${w.req.id} cannot be asked on GitHub: ${why}` });
    w.answer({ outcome: 'denied', by: 'github', reason: `cannot ask for approval on GitHub: ${why}` });
  }

  private kick(): void {
    if (this.polling) return;
    this.polling = true;
    void this.poll().finally(() => (this.polling = false));
  }

  private async poll(): Promise<void> {
    let interval = this.pollMs;
    let rateLimited = false;
    while ([...this.waiting.values()].some((w) => w.comment)) {
      await new Promise((r) => setTimeout(r, interval).unref());
      const where = await this.where!;
      if ('error' in where) return;
      try {
        const r = await this.client.commentsSince(where.issue, this.since!, this.etag);
        rateLimited = false;
        if (r === null) {
          interval = Math.min(MAX_POLL_MS, Math.round(interval * 1.5));
          continue;
        }
        this.etag = r.etag;
        interval = this.pollMs;
        const retry = await this.consider(r.comments, where.authors);
        // Later polls ask only for what changed after what was read (GitHub's times have whole
        // seconds: one second of overlap), unless a reply must be looked at again.
        const newest = r.comments.reduce((m, c) => Math.max(m, Date.parse(c.updatedAt)), 0);
        if (retry) this.etag = null;
        else if (newest > 0) this.since = new Date(Math.max(Date.parse(this.since!), newest - 1000)).toISOString().replace(/\.\d{3}Z$/, 'Z');
      } catch (e) {
        const err = e as GitHubApiError;
        if (err instanceof GitHubApiError && err.kind === 'rate-limit') {
          if (!rateLimited) this.record('gateway-error', { message: `${err.message}; asking again in ${formatDuration(Math.ceil(err.retryAfterMs! / 1000) * 1000)}` });
          rateLimited = true;
          interval = Math.min(err.retryAfterMs!, 15 * 60_000);
        } else if (err instanceof GitHubApiError && (err.kind === 'forbidden' || err.kind === 'not-found')) {
          for (const w of [...this.waiting.values()]) this.fail(w, err.message);
          return;
        } else {
          this.record('gateway-error', { message: `reading approval replies: ${(e as Error).message}` });
          interval = Math.min(MAX_POLL_MS, interval * 2);
        }
      }
    }
  }

  /**
   * Weighs new replies for every waiting request. All of a batch is checked before anything is
   * decided, so a /deny wins over approvals read with it. Returns true when a reply could not be
   * checked (GitHub failed) and must be read again.
   */
  private async consider(comments: IssueComment[], authors: string[]): Promise<boolean> {
    const self = this.settings.allowSelfApproval ? [] : [...authors, this.job.actor, this.job.triggeringActor].filter(Boolean).map((x) => x.toLowerCase());
    const sorted = [...comments].sort((a, b) => a.id - b.id);
    let retry = false;
    // Permissions are read when a reply is weighed, never remembered from an earlier poll: access
    // lowered or removed since then must stop the next reply. Within one batch (replies read at
    // the same moment) each author is asked once.
    const poll = ++this.pollNo;
    const asked = new Map<string, Promise<AuthorCheck>>();
    for (const w of [...this.waiting.values()]) {
      if (!w.comment || w.done) continue;
      const mine = sorted.find((c) => c.id === w.comment!.id);
      // The request comment must still say what was posted: an edit could show reviewers another command.
      if (mine && (mine.updatedAt !== mine.createdAt || mine.body !== w.comment.body)) {
        this.record('approval-reply', { session: w.req.session, command: w.req.command, id: w.req.id, comment_id: mine.id, comment_url: mine.url, author: mine.login, counted: false, why: 'the request comment itself was edited' });
        w.answer({ outcome: 'denied', by: 'github', reason: 'the request comment was edited while the command waited: reviewers may not have seen the real command' });
        continue;
      }
      const approvals: { login: string; url: string; why: string; reply: Record<string, unknown> }[] = [];
      let deny: { login: string; reason: string; why: string; reply: Record<string, unknown> } | null = null;
      for (const c of sorted) {
        if (w.seen.has(c.id) || c.id === w.comment.id) continue;
        if (this.ownLogin !== null && c.login.toLowerCase() === this.ownLogin) continue;
        w.seen.add(c.id);
        const check = checkReply(c, w.req.id, w.comment, self);
        if (check.kind === 'unrelated') continue;
        const reply = { session: w.req.session, command: w.req.command, id: w.req.id, comment_id: c.id, comment_url: c.url, author: c.login };
        if (check.kind === 'ignored') {
          this.record('approval-reply', { ...reply, counted: false, why: check.why });
          continue;
        }
        const may = await this.mayApprove(c.login, asked);
        const seenPerm = may.permission ? { permission: may.permission.permission, role_name: may.permission.roleName } : {};
        if (may.transient) {
          // Look at it again on the next poll rather than lose a valid verdict.
          w.seen.delete(c.id);
          retry = true;
          this.record('approval-reply', { ...reply, verb: check.verb, counted: false, why: `${may.why}; will check again` });
          continue;
        }
        if (!may.ok) {
          this.record('approval-reply', { ...reply, verb: check.verb, counted: false, why: may.why, ...seenPerm });
          continue;
        }
        if (check.verb === 'deny') deny ??= { login: c.login, reason: check.reason, why: may.why, reply: { ...reply, ...seenPerm } };
        else approvals.push({ login: c.login, url: c.url, why: may.why, reply: { ...reply, ...seenPerm } });
      }
      if (deny) {
        this.record('approval-reply', { ...deny.reply, verb: 'deny', counted: true, why: deny.why });
        w.answer({ outcome: 'denied', by: `github:${deny.login}`, ...(deny.reason ? { reason: deny.reason } : {}) });
        continue;
      }
      for (const a of approvals) {
        w.approvals.set(a.login.toLowerCase(), { reply: a.reply, poll });
        this.record('approval-reply', { ...a.reply, verb: 'approve', counted: true, why: `${a.why}; ${w.approvals.size} of ${this.settings.minApprovals} approvals` });
      }
      if (w.approvals.size < this.settings.minApprovals) continue;
      // Approvals counted in earlier polls are checked again before they release anything: an
      // approver whose access was lowered while waiting for the others no longer counts.
      let stale = false;
      for (const [key, a] of [...w.approvals]) {
        if (a.poll === poll) continue;
        const login = String(a.reply.author);
        const may = await this.mayApprove(login, asked);
        if (may.transient) {
          stale = true;
          retry = true;
          continue;
        }
        if (may.ok) {
          a.poll = poll;
          continue;
        }
        w.approvals.delete(key);
        this.record('approval-reply', { ...a.reply, verb: 'approve', counted: false, why: `no longer counted: ${may.why}; ${w.approvals.size} of ${this.settings.minApprovals} approvals`, ...(may.permission ? { permission: may.permission.permission, role_name: may.permission.roleName } : {}) });
      }
      if (!stale && w.approvals.size >= this.settings.minApprovals) {
        w.answer({ outcome: 'approved', by: [...w.approvals.keys()].map((l) => `github:${l}`).join(',') });
      }
    }
    return retry;
  }

  /**
   * Write access or above now (asked of GitHub for every reply, also for listed approvers), and,
   * when the policy lists approvers, listed by name or a member of a listed team now. `asked`
   * shares answers within one batch of replies only.
   */
  private mayApprove(login: string, asked: Map<string, Promise<AuthorCheck>>): Promise<AuthorCheck> {
    const key = login.toLowerCase();
    let p = asked.get(key);
    if (!p) {
      p = (async (): Promise<AuthorCheck> => {
        const s = this.settings;
        const permission = await this.client.permission(login);
        const verdict = permissionVerdict(login, permission);
        if (!verdict.ok || (s.users.length === 0 && s.teams.length === 0)) return { ...verdict, permission };
        const seen = describePermission(permission);
        if (s.users.includes(key)) return { ok: true, why: `${login} is a listed approver with ${seen} permission`, permission };
        for (const t of s.teams) {
          const [org, slug] = t.split('/') as [string, string];
          if (await this.client.isTeamMember(org, slug, login)) return { ok: true, why: `${login} is a member of @${t} with ${seen} permission`, permission };
        }
        return { ok: false, why: `${login} is not a listed approver nor a member of ${s.teams.map((t) => '@' + t).join(', ') || 'a listed team'}`, permission };
      })().catch((e: Error) => ({ ok: false, transient: true, why: `could not check ${login}: ${e.message}` }));
      asked.set(key, p);
    }
    return p;
  }

  private body(req: ApprovalRequest, authors: string[]): string {
    const j = this.job;
    const s = this.settings;
    const who = s.users.length || s.teams.length ? `${[...s.users, ...s.teams.map((t) => `@${t}`)].join(', ')}, while they have write access to the repository` : 'anyone with write access to the repository';
    const self = s.allowSelfApproval ? '' : ` ${[...authors, j.actor, j.triggeringActor].filter(Boolean).filter((v, i, a) => a.indexOf(v) === i).map((l) => `@${l}`).join(', ')} cannot approve.`;
    return [
      `### gateway-action: approval requested \`${req.id}\``,
      '',
      `A command on **${req.target}** is held by rule **${req.rule}**${req.reason ? `: ${req.reason}` : ''}`,
      '',
      // The command in a code block of its protocol's language (a kind nobody registered: plain, with its kind).
      this.renderers.for(req.kind).markdown(req),
      '',
      `| | |`,
      `|---|---|`,
      `| run | [${j.repository} run ${j.runId}, attempt ${j.attempt}](${j.serverUrl}/${j.repository}/actions/runs/${j.runId}/attempts/${j.attempt}) |`,
      `| commit | \`${j.sha.slice(0, 12)}\` |`,
      `| actor | @${j.actor}${j.triggeringActor && j.triggeringActor !== j.actor ? ` (triggered by @${j.triggeringActor})` : ''} |`,
      `| expires | ${req.expiresAt} |`,
      '',
      `Reply \`/approve ${req.id}\` or \`/deny ${req.id} <reason>\`. Who may approve: ${who}; ${s.minApprovals} approval${s.minApprovals === 1 ? '' : 's'} needed.${self} Edited comments do not count.`,
      '',
      `<!-- gateway-action approval ${req.id} run ${req.run} sha256 ${req.digest} -->`,
    ].join('\n');
  }
}
