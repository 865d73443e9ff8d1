// A local stand-in for GitHub's REST API (what GITHUB_API_URL points at), speaking the
// documented contract over real HTTP so the real Octokit can be pointed at it in tests:
// commit statuses, pull requests, issue comments (with ETag / If-None-Match), collaborator
// permissions, team memberships, file contents at a commit, GITHUB_TOKEN permission failures
// and rate limiting.
//
// What a GITHUB_TOKEN sees is modelled: comments it writes come from `github-actions[bot]`,
// writes outside `grantedPermissions` answer 403 "Resource not accessible by integration",
// rate-limit headers come with every answer, a conditional request answered 304 does not count
// against the rate limit. Everything is kept in memory; tests act as reviewers through
// addComment/editComment and inspect `statuses`, `comments` and `requests`.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

export type Permission = 'admin' | 'maintain' | 'write' | 'triage' | 'read' | 'none';
/**
 * A collaborator's role: a built-in one, or a custom repository role (`role_name`) inheriting a
 * base role, which is what GitHub's legacy `permission` field then reports.
 */
export type Role = Permission | { custom: string; base: 'admin' | 'maintain' | 'write' | 'triage' | 'read' };
export type GrantedPermission = 'statuses' | 'issues' | 'pull_requests';

export interface User {
  login: string;
  id: number;
  node_id: string;
  avatar_url: string;
  gravatar_id: string;
  url: string;
  html_url: string;
  type: 'User' | 'Bot' | 'Organization';
  site_admin: boolean;
}

/** An issue comment, as GitHub serves it (plus `issue`, the number, which is not sent). */
export interface Comment {
  issue: number;
  id: number;
  node_id: string;
  url: string;
  html_url: string;
  issue_url: string;
  body: string;
  user: User;
  created_at: string;
  updated_at: string;
  author_association: 'OWNER' | 'MEMBER' | 'COLLABORATOR' | 'CONTRIBUTOR' | 'NONE';
}

export interface CommitStatus {
  sha: string;
  state: string;
  context: string;
  description: string;
  target_url?: string;
  created_at: string;
  // As served:
  id: number;
  node_id: string;
  url: string;
  avatar_url: string;
  updated_at: string;
  creator: User;
}

export interface ApiRequest {
  method: string;
  /** The URL path without the query string. */
  path: string;
  /** The query string, with its '?', or ''. */
  query: string;
  status: number;
  ifNoneMatch?: string;
}

export interface PullSpec { number: number; headSha: string; mergeSha?: string; author: string }

export interface RepoSpec {
  owner: string;
  name: string;
  pulls?: PullSpec[];
  collaborators?: Record<string, Role>;
  /** 'org/slug' → member logins. */
  teams?: Record<string, string[]>;
  /** What the job's `permissions:` grants GITHUB_TOKEN for writing; all of them when absent. */
  grantedPermissions?: GrantedPermission[];
  /** The job's `permissions: contents:`: 'none' answers contents requests 403 (default 'read'). */
  contents?: 'read' | 'none';
  /** Files of commits: SHA (or branch name) → path in the repository → bytes. */
  trees?: Record<string, Record<string, string | Buffer>>;
}

export interface GitHubApi {
  /** The value for GITHUB_API_URL (no trailing slash). */
  url: string;
  /** The only accepted token (`Authorization: token X` or `Bearer X`). */
  token: string;
  statuses: CommitStatus[];
  comments: Comment[];
  addComment(issue: number, user: { login: string; type?: 'User' | 'Bot' }, body: string, createdAt?: Date): Comment;
  /** Changes a comment's body; updated_at becomes later than created_at. */
  editComment(id: number, body: string): void;
  requests: ApiRequest[];
  /**
   * Makes the next `count` requests whose path (or path with query) matches `re` fail with a
   * rate-limit answer: '403' is the primary limit (x-ratelimit-remaining: 0, x-ratelimit-reset
   * `retryAfterS` (default 60) seconds ahead), '429' the secondary limit (retry-after:
   * `retryAfterS`, default 60).
   */
  rateLimit(re: RegExp, count: number, kind: '403' | '429', retryAfterS?: number): void;
  /** Changes a user's role on the repository from now on; null removes the collaborator. */
  setRole(login: string, role: Role | null): void;
  /** Puts a file into a commit's tree (null removes it), for the contents API. */
  setFile(commit: string, file: string, content: string | Buffer | null): void;
  close(): Promise<void>;
}

const DOCS = 'https://docs.github.com/rest';
const BOT: Pick<User, 'login' | 'type'> & { id: number } = { login: 'github-actions[bot]', type: 'Bot', id: 41898282 };
const RATE_LIMIT = 1000; // a GITHUB_TOKEN's hourly limit per repository
const STATES = new Set(['error', 'failure', 'pending', 'success']);

/** GitHub's timestamps: ISO 8601 in UTC, whole seconds. */
const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const nodeId = (prefix: string, id: number): string => `${prefix}_kwDO${Buffer.from(String(id)).toString('base64url')}`;
const stableId = (s: string): number => createHash('sha256').update(s.toLowerCase()).digest().readUInt32BE(0) % 90_000_000 + 1_000_000;
const lc = (s: string): string => s.toLowerCase();

class HttpError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Record<string, string>;
  constructor(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) {
    super(String(body.message));
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

const notFound = (): HttpError => new HttpError(404, { message: 'Not Found', documentation_url: DOCS, status: '404' });
const notAccessible = (doc: string, accepted?: string): HttpError =>
  new HttpError(403, { message: 'Resource not accessible by integration', documentation_url: `${DOCS}/${doc}`, status: '403' },
    accepted ? { 'x-accepted-github-permissions': accepted } : {});
const validationFailed = (resource: string, field: string, code: string, message?: string): HttpError =>
  new HttpError(422, {
    message: 'Validation Failed',
    errors: [{ resource, field, code, ...(message ? { message } : {}) }],
    documentation_url: DOCS,
    status: '422',
  });

/** `raw`: bytes sent as they are (a contents request with a raw media type), not JSON. */
interface Reply { status: number; body?: unknown; headers?: Record<string, string>; raw?: Buffer }

export async function startGitHubApi(repo: RepoSpec): Promise<GitHubApi> {
  const token = `ghs_${randomBytes(18).toString('base64url')}`;
  const pulls = repo.pulls ?? [];
  const collaborators = new Map(Object.entries(repo.collaborators ?? {}).map(([k, v]) => [lc(k), v] as const));
  const teams = new Map(Object.entries(repo.teams ?? {}).map(([k, v]) => [lc(k), new Set(v.map(lc))] as const));
  const granted = new Set<GrantedPermission>(repo.grantedPermissions ?? ['statuses', 'issues', 'pull_requests']);
  const fullName = `${repo.owner}/${repo.name}`;
  const trees = new Map<string, Map<string, Buffer>>(Object.entries(repo.trees ?? {}).map(([sha, files]) => [sha, new Map(Object.entries(files).map(([f, c]) => [f, Buffer.from(c)]))]));
  const html = `https://github.com/${fullName}`;
  const started = new Date();
  const resetAt = Math.floor(started.getTime() / 1000) + 3600;
  let used = 0;
  let nextComment = 2_000_000_000;
  let nextStatus = 30_000_000_000;
  const limits: { re: RegExp; left: number; kind: '403' | '429'; retryAfterS: number }[] = [];
  const requests: ApiRequest[] = [];
  let url = '';

  const user = (login: string, type: User['type'] = 'User', id = stableId(login)): User => ({
    login, id, node_id: nodeId(type === 'Bot' ? 'BOT' : type === 'Organization' ? 'O' : 'U', id),
    avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`, gravatar_id: '',
    url: `${url}/users/${encodeURIComponent(login)}`, html_url: `https://github.com/${encodeURIComponent(login)}`,
    type, site_admin: false,
  });
  const botUser = (): User => ({ ...user(BOT.login, 'Bot', BOT.id), html_url: 'https://github.com/apps/github-actions' });
  const repoId = stableId(`repo:${fullName}`);
  const repository = (): Record<string, unknown> => ({
    id: repoId, node_id: nodeId('R', repoId), name: repo.name, full_name: fullName, private: true,
    owner: user(repo.owner, 'Organization'), html_url: html, description: null, fork: false,
    url: `${url}/repos/${fullName}`, default_branch: 'main', visibility: 'private',
  });

  const association = (login: string, type: User['type']): Comment['author_association'] => {
    if (type === 'Bot') return 'NONE';
    if (lc(login) === lc(repo.owner)) return 'OWNER';
    for (const [key, members] of teams) if (key.startsWith(`${lc(repo.owner)}/`) && members.has(lc(login))) return 'MEMBER';
    const perm = collaborators.get(lc(login));
    if (perm && perm !== 'none') return 'COLLABORATOR';
    if (pulls.some((p) => lc(p.author) === lc(login))) return 'CONTRIBUTOR';
    return 'NONE';
  };

  const pullJson = (p: PullSpec): Record<string, unknown> => {
    const id = stableId(`pull:${fullName}#${p.number}`);
    const apiUrl = `${url}/repos/${fullName}/pulls/${p.number}`;
    const author = user(p.author);
    const baseSha = createHash('sha1').update(`base:${fullName}`).digest('hex');
    return {
      url: apiUrl, id, node_id: nodeId('PR', id), html_url: `${html}/pull/${p.number}`,
      diff_url: `${html}/pull/${p.number}.diff`, patch_url: `${html}/pull/${p.number}.patch`,
      issue_url: `${url}/repos/${fullName}/issues/${p.number}`, commits_url: `${apiUrl}/commits`,
      review_comments_url: `${apiUrl}/comments`, comments_url: `${url}/repos/${fullName}/issues/${p.number}/comments`,
      statuses_url: `${url}/repos/${fullName}/statuses/${p.headSha}`,
      number: p.number, state: 'open', locked: false, title: `Pull request #${p.number}`, user: author, body: null,
      labels: [], milestone: null, active_lock_reason: null,
      created_at: iso(started), updated_at: iso(started), closed_at: null, merged_at: null,
      merge_commit_sha: p.mergeSha ?? null, assignee: null, assignees: [], requested_reviewers: [], requested_teams: [],
      draft: false,
      head: { label: `${p.author}:feature-${p.number}`, ref: `feature-${p.number}`, sha: p.headSha, user: author, repo: repository() },
      base: { label: `${repo.owner}:main`, ref: 'main', sha: baseSha, user: user(repo.owner, 'Organization'), repo: repository() },
      author_association: association(p.author, 'User'), auto_merge: null,
      merged: false, mergeable: true, mergeable_state: 'clean', merged_by: null,
      comments: comments.filter((c) => c.issue === p.number).length, review_comments: 0,
      maintainer_can_modify: false, commits: 1, additions: 1, deletions: 0, changed_files: 1,
    };
  };

  const comments: Comment[] = [];
  const statuses: CommitStatus[] = [];

  const makeComment = (issue: number, who: User, body: string, createdAt: Date): Comment => {
    const id = nextComment++;
    return {
      issue, id, node_id: nodeId('IC', id),
      url: `${url}/repos/${fullName}/issues/comments/${id}`,
      html_url: `${html}/pull/${issue}#issuecomment-${id}`,
      issue_url: `${url}/repos/${fullName}/issues/${issue}`,
      body, user: who, created_at: iso(createdAt), updated_at: iso(createdAt),
      author_association: association(who.login, who.type),
    };
  };
  const edit = (c: Comment, body: string): void => {
    c.body = body;
    c.updated_at = iso(new Date(Math.max(Date.now(), Date.parse(c.created_at) + 1000)));
  };
  const served = (c: Comment): Omit<Comment, 'issue'> => {
    const { issue: _issue, ...rest } = c;
    return rest;
  };

  const isIssue = (n: number): boolean => pulls.some((p) => p.number === n);
  const resolveRef = (ref: string): string => {
    const pull = /^(?:refs\/)?pull\/(\d+)\/(head|merge)$/.exec(ref);
    if (pull) {
      const p = pulls.find((x) => x.number === Number(pull[1]));
      if (p) return pull[2] === 'head' ? p.headSha : (p.mergeSha ?? p.headSha);
    }
    const branch = ref.replace(/^refs\/heads\//, '');
    const byBranch = pulls.find((x) => `feature-${x.number}` === branch);
    return byBranch ? byBranch.headSha : ref;
  };

  /** Pages a list the way GitHub does, with a Link header for the neighbours. */
  const page = <T>(u: URL, items: T[]): Reply => {
    const perPage = Math.min(100, Math.max(1, Number(u.searchParams.get('per_page') ?? 30) || 30));
    const pageNo = Math.max(1, Number(u.searchParams.get('page') ?? 1) || 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (n: number, rel: string): string => {
      const q = new URL(u.href);
      q.searchParams.set('per_page', String(perPage));
      q.searchParams.set('page', String(n));
      return `<${url}${q.pathname}${q.search}>; rel="${rel}"`;
    };
    const links: string[] = [];
    if (pageNo > 1) links.push(link(pageNo - 1, 'prev'), link(1, 'first'));
    if (pageNo < last) links.push(link(pageNo + 1, 'next'), link(last, 'last'));
    return { status: 200, body: items.slice((pageNo - 1) * perPage, pageNo * perPage), headers: links.length ? { link: links.join(', ') } : {} };
  };

  const need = (anyOf: GrantedPermission[], doc: string): void => {
    if (!anyOf.some((p) => granted.has(p))) throw notAccessible(doc, anyOf.map((p) => `${p}=write`).join('; '));
  };

  /**
   * GET /repos/{owner}/{repo}/contents/{path}?ref=: a file as JSON with its bytes in base64 (wrapped
   * at 60 characters as GitHub does; `encoding: none` and no content past 1 MB), or the bytes
   * themselves with a raw media type; a directory as a list; 404 for a path or ref the tree does
   * not have, 403 when the token has no contents permission.
   */
  const contents = (u: URL, file: string, accept: string): Reply => {
    if (repo.contents === 'none') throw notAccessible('repos/contents#get-repository-content', 'contents=read');
    const ref = u.searchParams.get('ref') || 'main';
    const tree = trees.get(ref);
    if (!tree) throw new HttpError(404, { message: `No commit found for the ref ${ref}`, documentation_url: `${DOCS}/repos/contents#get-repository-content`, status: '404' });
    const blobSha = (b: Buffer): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
    const entry = (f: string, b: Buffer | null): Record<string, unknown> => {
      const sha = b ? blobSha(b) : createHash('sha1').update(`tree:${ref}:${f}`).digest('hex');
      const self = `${url}/repos/${fullName}/contents/${f}?ref=${ref}`;
      const gitUrl = `${url}/repos/${fullName}/git/${b ? 'blobs' : 'trees'}/${sha}`;
      const htmlUrl = `${html}/${b ? 'blob' : 'tree'}/${ref}/${f}`;
      return {
        type: b ? 'file' : 'dir', name: f.split('/').pop(), path: f, sha, size: b ? b.length : 0, url: self, html_url: htmlUrl, git_url: gitUrl,
        download_url: b ? `https://raw.githubusercontent.com/${fullName}/${ref}/${f}` : null, _links: { self, git: gitUrl, html: htmlUrl },
      };
    };
    const bytes = tree.get(file);
    if (bytes) {
      if (/application\/vnd\.github(?:\.v3)?\.raw/.test(accept)) return { status: 200, raw: bytes, headers: { 'content-type': 'application/vnd.github.raw; charset=utf-8' } };
      const big = bytes.length > 1024 * 1024;
      const b64 = big ? '' : bytes.toString('base64').replace(/.{60}/g, '$&\n');
      return { status: 200, body: { ...entry(file, bytes), content: b64 && !b64.endsWith('\n') ? `${b64}\n` : b64, encoding: big ? 'none' : 'base64' } };
    }
    const prefix = file === '' ? '' : `${file}/`;
    const children = new Map<string, Buffer | null>();
    for (const [f, b] of tree) if (f.startsWith(prefix)) {
      const [name, ...rest] = f.slice(prefix.length).split('/');
      children.set(`${prefix}${name}`, rest.length ? null : b);
    }
    if (children.size === 0) throw notFound();
    return { status: 200, body: [...children].sort(([a], [b]) => a.localeCompare(b)).map(([f, b]) => entry(f, b)) };
  };

  const route = (method: string, u: URL, body: Record<string, unknown>, accept = ''): Reply => {
    const p = u.pathname.replace(/\/+$/, '');
    let m: RegExpExecArray | null;
    if (method === 'GET' && p === '/rate_limit') {
      const core = { limit: RATE_LIMIT, remaining: RATE_LIMIT - used, reset: resetAt, used, resource: 'core' };
      return { status: 200, body: { resources: { core }, rate: core } };
    }
    if (method === 'GET' && p === '/user') throw notAccessible('users/users#get-the-authenticated-user');
    if ((m = /^\/orgs\/([^/]+)\/teams\/([^/]+)\/memberships\/([^/]+)$/.exec(p))) {
      if (method !== 'GET') throw notFound();
      const [org, slug, login] = [m[1]!, m[2]!, decodeURIComponent(m[3]!)];
      const members = teams.get(lc(`${decodeURIComponent(org)}/${decodeURIComponent(slug)}`));
      if (!members || !members.has(lc(login))) throw notFound();
      return { status: 200, body: { url: `${url}${p}`, role: 'member', state: 'active' } };
    }
    if (!(m = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(p))) throw notFound();
    if (lc(decodeURIComponent(m[1]!)) !== lc(repo.owner) || lc(decodeURIComponent(m[2]!)) !== lc(repo.name)) throw notFound();
    const rest = m[3] ?? '';

    if (rest === '' && method === 'GET') return { status: 200, body: repository() };
    if ((m = /^\/contents(?:\/(.*))?$/.exec(rest)) && method === 'GET') return contents(u, (m[1] ?? '').split('/').map(decodeURIComponent).join('/'), accept);

    if ((m = /^\/statuses\/([^/]+)$/.exec(rest)) && method === 'POST') {
      need(['statuses'], 'commits/statuses#create-a-commit-status');
      const sha = decodeURIComponent(m[1]!);
      if (!/^[0-9a-f]{4,40}$/i.test(sha)) {
        throw new HttpError(422, { message: `No commit found for SHA: ${sha}`, documentation_url: `${DOCS}/commits/statuses#create-a-commit-status`, status: '422' });
      }
      const state = body.state;
      if (typeof state !== 'string' || !STATES.has(state)) {
        throw validationFailed('Status', 'state', 'invalid', `state is not included in the list`);
      }
      const description = body.description == null ? '' : String(body.description);
      if (description.length > 140) {
        throw validationFailed('Status', 'description', 'custom', 'description is too long (maximum is 140 characters)');
      }
      const targetUrl = body.target_url == null ? undefined : String(body.target_url);
      if (targetUrl !== undefined && targetUrl !== '' && !/^https?:\/\//.test(targetUrl)) {
        throw validationFailed('Status', 'target_url', 'custom', 'target_url must use http(s) scheme');
      }
      const id = nextStatus++;
      const now = iso(new Date());
      const s: CommitStatus = {
        sha: sha.toLowerCase(), state, context: body.context == null ? 'default' : String(body.context), description,
        ...(targetUrl !== undefined ? { target_url: targetUrl } : {}),
        created_at: now, id, node_id: nodeId('SC', id), url: `${url}/repos/${fullName}/statuses/${sha}`,
        avatar_url: 'https://avatars.githubusercontent.com/in/15368?v=4', updated_at: now, creator: botUser(),
      };
      statuses.push(s);
      return { status: 201, body: servedStatus(s) };
    }
    if ((m = /^\/commits\/([^/]+(?:\/[^/]+)*?)\/(statuses|status|pulls)$/.exec(rest)) && method === 'GET') {
      const ref = resolveRef(decodeURIComponent(m[1]!)).toLowerCase();
      if (m[2] === 'pulls') return page(u, pulls.filter((x) => lc(x.headSha) === ref).map(pullJson));
      const forRef = statuses.filter((s) => s.sha === ref).reverse(); // newest first
      if (m[2] === 'statuses') return page(u, forRef.map(servedStatus));
      const latest = new Map<string, CommitStatus>();
      for (const s of forRef) if (!latest.has(s.context)) latest.set(s.context, s);
      const all = [...latest.values()];
      const state = all.some((s) => s.state === 'error' || s.state === 'failure') ? 'failure'
        : all.length === 0 || all.some((s) => s.state === 'pending') ? 'pending' : 'success';
      return {
        status: 200,
        body: {
          state, statuses: all.map(servedStatus), sha: ref, total_count: all.length, repository: repository(),
          commit_url: `${url}/repos/${fullName}/commits/${ref}`, url: `${url}/repos/${fullName}/commits/${ref}/status`,
        },
      };
    }
    if ((m = /^\/pulls\/(\d+)$/.exec(rest)) && method === 'GET') {
      const pr = pulls.find((x) => x.number === Number(m![1]));
      if (!pr) throw notFound();
      return { status: 200, body: pullJson(pr) };
    }
    if ((m = /^\/issues\/(\d+)\/comments$/.exec(rest))) {
      const issue = Number(m[1]);
      if (!isIssue(issue)) throw notFound();
      if (method === 'GET') {
        let list = comments.filter((c) => c.issue === issue);
        const since = u.searchParams.get('since');
        if (since !== null) {
          const t = Date.parse(since);
          if (Number.isNaN(t)) throw validationFailed('IssueComment', 'since', 'invalid', `Invalid value for since: ${since}`);
          const floor = Math.floor(t / 1000) * 1000;
          list = list.filter((c) => Date.parse(c.updated_at) >= floor);
        }
        const reply = page(u, [...list].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at) || a.id - b.id).map(served));
        return reply;
      }
      if (method === 'POST') {
        need(['issues', 'pull_requests'], 'issues/comments#create-an-issue-comment');
        if (typeof body.body !== 'string' || body.body === '') throw validationFailed('IssueComment', 'body', 'missing_field');
        if (body.body.length > 65536) throw validationFailed('IssueComment', 'body', 'custom', 'body is too long (maximum is 65536 characters)');
        const c = makeComment(issue, botUser(), body.body, new Date());
        comments.push(c);
        return { status: 201, body: served(c), headers: { location: c.url } };
      }
      throw notFound();
    }
    if ((m = /^\/issues\/comments\/(\d+)$/.exec(rest))) {
      const c = comments.find((x) => x.id === Number(m![1]));
      if (method === 'GET') {
        if (!c) throw notFound();
        return { status: 200, body: served(c) };
      }
      if (method === 'PATCH') {
        need(['issues', 'pull_requests'], 'issues/comments#update-an-issue-comment');
        if (!c) throw notFound();
        if (typeof body.body !== 'string' || body.body === '') throw validationFailed('IssueComment', 'body', 'missing_field');
        edit(c, body.body);
        return { status: 200, body: served(c) };
      }
      throw notFound();
    }
    if ((m = /^\/collaborators\/([^/]+)\/permission$/.exec(rest)) && method === 'GET') {
      const login = decodeURIComponent(m[1]!);
      const role = collaborators.get(lc(login));
      if (role === undefined) {
        throw new HttpError(404, { message: `${login} is not a user`, documentation_url: `${DOCS}/collaborators/collaborators#get-repository-permissions-for-a-user`, status: '404' });
      }
      // `permission` is the legacy base role (maintain maps to write, triage to read); `role_name`
      // the assigned role, custom roles included; `user.permissions` the base role's abilities.
      const base = typeof role === 'string' ? role : role.base;
      const roleName = typeof role === 'string' ? role : role.custom;
      const permission = base === 'maintain' ? 'write' : base === 'triage' ? 'read' : base;
      const rank = ['none', 'read', 'triage', 'write', 'maintain', 'admin'].indexOf(base);
      const u2 = {
        ...user(login),
        permissions: { admin: rank >= 5, maintain: rank >= 4, push: rank >= 3, triage: rank >= 2, pull: rank >= 1 },
        role_name: roleName,
      };
      return { status: 200, body: { permission, role_name: roleName, user: u2 } };
    }
    throw notFound();
  };

  const servedStatus = (s: CommitStatus): Record<string, unknown> => ({
    url: s.url, avatar_url: s.avatar_url, id: s.id, node_id: s.node_id, state: s.state, description: s.description,
    target_url: s.target_url ?? null, context: s.context, created_at: s.created_at, updated_at: s.updated_at, creator: s.creator,
  });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = (req.method ?? 'GET').toUpperCase();
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const ifNoneMatch = req.headers['if-none-match'];
      const record: ApiRequest = { method, path: u.pathname, query: u.search, status: 0, ...(ifNoneMatch ? { ifNoneMatch } : {}) };
      requests.push(record);
      const base: Record<string, string> = {
        'x-github-request-id': `${randomBytes(4).toString('hex').toUpperCase()}:${randomBytes(4).toString('hex').toUpperCase()}`,
        'x-github-media-type': 'github.v3; format=json',
        'x-github-api-version-selected': '2022-11-28',
      };
      const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
        record.status = status;
        const all = { ...base, ...headers };
        if (body === undefined) {
          res.writeHead(status, all);
          res.end();
          return;
        }
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...all });
        res.end(JSON.stringify(body));
      };
      const rate = (): Record<string, string> => ({
        'x-ratelimit-limit': String(RATE_LIMIT), 'x-ratelimit-remaining': String(Math.max(0, RATE_LIMIT - used)),
        'x-ratelimit-reset': String(resetAt), 'x-ratelimit-used': String(used), 'x-ratelimit-resource': 'core',
      });

      const auth = req.headers.authorization;
      const m = auth ? /^(?:token|bearer)\s+(\S+)$/i.exec(auth) : null;
      if (!auth) return send(401, { message: 'Requires authentication', documentation_url: DOCS, status: '401' });
      if (!m || m[1] !== token) return send(401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' });

      const limit = limits.find((l) => {
        if (l.left <= 0) return false;
        l.re.lastIndex = 0;
        const hit = l.re.test(u.pathname);
        l.re.lastIndex = 0;
        return hit || l.re.test(u.pathname + u.search);
      });
      if (limit) {
        limit.left--;
        if (limit.kind === '403') {
          return send(403, {
            message: `API rate limit exceeded for installation ID ${stableId(fullName)}. If you reach out to GitHub Support for help, please include the request ID ${base['x-github-request-id']} and timestamp ${new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}.`,
            documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
            status: '403',
          }, {
            'x-ratelimit-limit': String(RATE_LIMIT), 'x-ratelimit-remaining': '0', 'x-ratelimit-used': String(RATE_LIMIT),
            'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + limit.retryAfterS), 'x-ratelimit-resource': 'core',
          });
        }
        return send(429, {
          message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID ' + base['x-github-request-id'] + '.',
          documentation_url: 'https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
          status: '429',
        }, { 'retry-after': String(limit.retryAfterS), ...rate() });
      }

      let body: Record<string, unknown> = {};
      const raw = Buffer.concat(chunks).toString('utf8');
      if (raw.trim() !== '' && method !== 'GET') {
        try {
          const parsed: unknown = JSON.parse(raw);
          if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
          body = parsed as Record<string, unknown>;
        } catch {
          used++;
          return send(400, { message: 'Problems parsing JSON', documentation_url: DOCS, status: '400' }, rate());
        }
      }

      let reply: Reply;
      try {
        reply = route(method, u, body, String(req.headers.accept ?? ''));
      } catch (err) {
        if (!(err instanceof HttpError)) {
          used++;
          return send(500, { message: `Server Error: ${(err as Error).message}`, status: '500' }, rate());
        }
        used++;
        return send(err.status, err.body, { ...rate(), ...err.headers });
      }
      if (reply.raw) {
        used++;
        record.status = reply.status;
        res.writeHead(reply.status, { ...base, ...reply.headers, ...rate() });
        res.end(reply.raw);
        return;
      }
      const json = JSON.stringify(reply.body ?? null);
      if (method === 'GET') {
        const etag = `W/"${createHash('sha256').update(`${u.pathname}${u.search}\n${json}`).digest('hex')}"`;
        const headers = { ...reply.headers, etag, 'cache-control': 'private, max-age=60, s-maxage=60', vary: 'Accept, Authorization, Cookie, X-GitHub-OTP' };
        const tags = (ifNoneMatch ?? '').split(',').map((t) => t.trim()).filter(Boolean);
        if (tags.includes(etag) || tags.includes(etag.slice(2)) || tags.includes('*')) {
          // Conditional requests answered 304 do not count against the rate limit.
          return send(304, undefined, { ...headers, ...rate() });
        }
        used++;
        return send(reply.status, reply.body, { ...headers, ...rate() });
      }
      used++;
      return send(reply.status, reply.body, { ...reply.headers, ...rate() });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    token,
    statuses,
    comments,
    requests,
    addComment(issue, who, body, createdAt = new Date()) {
      const c = makeComment(issue, user(who.login, who.type ?? 'User'), body, createdAt);
      comments.push(c);
      return c;
    },
    editComment(id, body) {
      const c = comments.find((x) => x.id === id);
      if (!c) throw new Error(`no comment ${id}`);
      edit(c, body);
    },
    rateLimit(re, count, kind, retryAfterS = 60) {
      limits.push({ re, left: count, kind, retryAfterS });
    },
    setFile(commit, file, content) {
      const tree = trees.get(commit) ?? new Map<string, Buffer>();
      trees.set(commit, tree);
      if (content === null) tree.delete(file);
      else tree.set(file, Buffer.from(content));
    },
    setRole(login, role) {
      if (role === null) collaborators.delete(lc(login));
      else collaborators.set(lc(login), role);
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
