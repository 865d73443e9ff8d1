// The few GitHub REST calls approvals need, through the real Octokit: issue comments (polled with
// ETags, so an unchanged poll costs no rate limit), pull requests, collaborator permission and
// team membership. Errors are classified so callers can back off, or fail closed with a message
// that names the missing permission.
import { Octokit } from '@octokit/rest';

export interface IssueComment { id: number; body: string; login: string; isBot: boolean; createdAt: string; updatedAt: string; url: string }

export interface RepoPermission { permission: string; roleName: string | null }

export type GitHubErrorKind = 'rate-limit' | 'forbidden' | 'not-found' | 'other';

export class GitHubApiError extends Error {
  readonly kind: GitHubErrorKind;
  readonly status: number;
  /** When to try again, for rate limits. */
  readonly retryAfterMs: number | null;
  constructor(kind: GitHubErrorKind, status: number, message: string, retryAfterMs: number | null = null) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

export interface RepoRef { owner: string; repo: string; apiUrl: string; token: string }

export class RepoClient {
  private readonly octokit: Octokit;
  readonly ref: RepoRef;

  constructor(ref: RepoRef) {
    this.ref = ref;
    this.octokit = new Octokit({ auth: ref.token, baseUrl: ref.apiUrl, request: { retries: 0 } });
  }

  async createComment(issue: number, body: string): Promise<IssueComment> {
    const r = await this.call(`post a comment on #${issue}`, () => this.octokit.rest.issues.createComment({ owner: this.ref.owner, repo: this.ref.repo, issue_number: issue, body }));
    return comment(r.data as RawComment);
  }

  async updateComment(id: number, body: string): Promise<void> {
    await this.call(`edit comment ${id}`, () => this.octokit.rest.issues.updateComment({ owner: this.ref.owner, repo: this.ref.repo, comment_id: id, body }));
  }

  /** Comments updated since `since`; null when unchanged since the answer that carried `etag`. */
  async commentsSince(issue: number, since: string, etag: string | null): Promise<{ comments: IssueComment[]; etag: string | null } | null> {
    const out: IssueComment[] = [];
    let nextEtag: string | null = null;
    for (let page = 1; page <= 10; page++) {
      try {
        const r = await this.call(`read the comments of #${issue}`, () => this.octokit.rest.issues.listComments({
          owner: this.ref.owner, repo: this.ref.repo, issue_number: issue, since, per_page: 100, page,
          headers: page === 1 && etag ? { 'if-none-match': etag } : {},
        }));
        if (page === 1) nextEtag = (r.headers.etag as string | undefined) ?? null;
        out.push(...(r.data as RawComment[]).map(comment));
        if ((r.data as unknown[]).length < 100) break;
        // A page-1 ETag says nothing about later pages: ask unconditionally next time.
        nextEtag = null;
        if (page === 10) throw new GitHubApiError('other', 0, `more than 1000 comments changed on #${issue} since ${since}; reading them in part`);
      } catch (e) {
        if (e instanceof GitHubApiError && e.status === 304) return null;
        throw e;
      }
    }
    return { comments: out, etag: nextEtag };
  }

  async pull(n: number): Promise<{ author: string; headSha: string }> {
    const r = await this.call(`read pull request #${n}`, () => this.octokit.rest.pulls.get({ owner: this.ref.owner, repo: this.ref.repo, pull_number: n }));
    return { author: String(r.data.user?.login ?? ''), headSha: r.data.head.sha };
  }

  /** Open pull requests that contain `sha`, the one whose head it is first. */
  async pullsForCommit(sha: string): Promise<{ number: number; author: string; isHead: boolean }[]> {
    const r = await this.call(`find the pull request of commit ${sha.slice(0, 12)}`, () => this.octokit.rest.repos.listPullRequestsAssociatedWithCommit({ owner: this.ref.owner, repo: this.ref.repo, commit_sha: sha }));
    return (r.data as { number: number; state?: string; user?: { login?: string } | null; head?: { sha?: string } }[])
      .filter((p) => p.state === undefined || p.state === 'open')
      .map((p) => ({ number: p.number, author: String(p.user?.login ?? ''), isHead: p.head?.sha === sha }))
      .sort((a, b) => Number(b.isHead) - Number(a.isHead));
  }

  /**
   * The user's access to the repository as GitHub computes it now (the highest of every grant:
   * repository, teams, organization, enterprise). `permission` is GitHub's legacy base role,
   * `admin`, `write`, `read` or `none` (maintain is reported as write, triage as read, a custom
   * role as the base role it inherits); `roleName` is the assigned role's name (`maintain`,
   * `triage`, a custom role). A user GitHub does not know as a collaborator has `none`.
   */
  async permission(user: string): Promise<RepoPermission> {
    try {
      const r = await this.call(`read ${user}'s permission`, () => this.octokit.rest.repos.getCollaboratorPermissionLevel({ owner: this.ref.owner, repo: this.ref.repo, username: user }));
      const d = r.data as { permission?: unknown; role_name?: unknown };
      return { permission: typeof d.permission === 'string' ? d.permission : 'none', roleName: typeof d.role_name === 'string' ? d.role_name : null };
    } catch (e) {
      if (e instanceof GitHubApiError && e.kind === 'not-found') return { permission: 'none', roleName: null };
      throw e;
    }
  }

  async isTeamMember(org: string, team: string, user: string): Promise<boolean> {
    try {
      const r = await this.call(`read ${org}/${team}'s membership of ${user}`, () => this.octokit.rest.teams.getMembershipForUserInOrg({ org, team_slug: team, username: user }));
      return (r.data as { state?: string }).state === 'active';
    } catch (e) {
      if (e instanceof GitHubApiError && e.kind === 'not-found') return false;
      throw e;
    }
  }

  /**
   * A file's exact bytes at a commit, from the contents API's JSON form (base64): the raw form
   * would reach us decoded as text. Callers read `status` for why it failed (404: no such file
   * at that commit; 401/403: the token may not read contents).
   */
  async fileAt(file: string, ref: string): Promise<Buffer> {
    const what = `read ${file} at ${ref.slice(0, 12)}`;
    const r = await this.call(what, () => this.octokit.rest.repos.getContent({ owner: this.ref.owner, repo: this.ref.repo, path: file, ref, request: { signal: AbortSignal.timeout(30_000) } }));
    const d = r.data as unknown as { type?: unknown; encoding?: unknown; content?: unknown } | unknown[];
    if (Array.isArray(d) || d.type !== 'file') throw new GitHubApiError('other', r.status, `GitHub says ${file} at ${ref.slice(0, 12)} is ${Array.isArray(d) ? 'a directory' : `a ${String(d.type)}`}, not a file`);
    if (d.encoding !== 'base64' || typeof d.content !== 'string') throw new GitHubApiError('other', r.status, `GitHub sent ${file} at ${ref.slice(0, 12)} without its content (encoding ${String(d.encoding)}: files over 1 MB are not served this way)`);
    return Buffer.from(d.content, 'base64');
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw classify(e, what);
    }
  }
}

interface RawComment { id: number; body?: string | null; user?: { login?: string; type?: string } | null; created_at: string; updated_at: string; html_url: string }

function comment(c: RawComment): IssueComment {
  const login = String(c.user?.login ?? '');
  return { id: c.id, body: c.body ?? '', login, isBot: c.user?.type === 'Bot' || login.endsWith('[bot]'), createdAt: c.created_at, updatedAt: c.updated_at, url: c.html_url };
}

function classify(e: unknown, what: string): GitHubApiError {
  const err = e as { status?: number; message?: string; response?: { headers?: Record<string, string | undefined> } };
  const status = err.status ?? 0;
  const h = err.response?.headers ?? {};
  if (status === 304) return new GitHubApiError('other', 304, 'not modified');
  const retryAfter = h['retry-after'] ? Number(h['retry-after']) * 1000 : null;
  const reset = h['x-ratelimit-reset'] && h['x-ratelimit-remaining'] === '0' ? Number(h['x-ratelimit-reset']) * 1000 - Date.now() : null;
  if (status === 429 || (status === 403 && (retryAfter !== null || reset !== null))) {
    return new GitHubApiError('rate-limit', status, `GitHub rate-limited the request to ${what}`, Math.max(1000, retryAfter ?? reset ?? 60_000));
  }
  if (status === 403) return new GitHubApiError('forbidden', 403, `GitHub refused to ${what} (403 ${err.message ?? ''}): the job's token needs permissions pull-requests: write and issues: write`);
  if (status === 404) return new GitHubApiError('not-found', 404, `GitHub found nothing when asked to ${what} (404): check the pull request or issue number and that the token can see the repository`);
  return new GitHubApiError('other', status, `GitHub failed to ${what}: ${err.message ?? String(e)}`);
}
