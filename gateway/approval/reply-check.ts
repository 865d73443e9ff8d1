// Whether a PR comment is a valid verdict on a request, as far as the comment itself tells: a
// forged approval is worse than none, so every rule that does not need GitHub's API is here, pure.
// Whether the author may approve at all (write access now, and listed or a team member) is asked
// of GitHub by the approver afterwards, and judged by `permissionVerdict` here.
import type { IssueComment, RepoPermission } from '../github/repo-client.ts';

export interface ReplyCommand { verb: 'approve' | 'deny'; id: string; reason: string }

/** `/approve ID` and `/deny ID [reason]` lines of a comment. */
export function replyCommands(body: string): ReplyCommand[] {
  const out: ReplyCommand[] = [];
  let fence: string | null = null;
  for (const line of body.split(/\r?\n/)) {
    // Text inside code blocks is quoted, not said: pasted SQL must not approve anything.
    const f = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (f) {
      if (fence === null) fence = f[1]!;
      else if (f[1]![0] === fence[0] && f[1]!.length >= fence.length) fence = null;
      continue;
    }
    if (fence !== null || /^( {4}|\t)/.test(line)) continue;
    const m = /^ {0,3}\/(approve|deny)\s+([A-Za-z0-9]+)\b[ \t]*(.*)$/.exec(line);
    if (m) out.push({ verb: m[1] as 'approve' | 'deny', id: m[2]!.toLowerCase(), reason: m[3]!.trim() });
  }
  return out;
}

export interface RequestComment { id: number; createdAt: string }

export type ReplyCheck =
  | { kind: 'candidate'; verb: 'approve' | 'deny'; reason: string }
  | { kind: 'ignored'; why: string }
  | { kind: 'unrelated' };

/**
 * `selfLogins`: the PR author and the run's actor and triggering actor (lower-case), who may not
 * approve unless the policy allows self-approval; empty when it does.
 */
export function checkReply(c: IssueComment, requestId: string, request: RequestComment, selfLogins: string[]): ReplyCheck {
  const commands = replyCommands(c.body);
  if (commands.length === 0) return { kind: 'unrelated' };
  const mine = commands.find((x) => x.id === requestId);
  if (!mine) return { kind: 'ignored', why: `names request ${commands.map((x) => x.id).join(', ')}, not ${requestId}` };
  // Comment ids grow with time; the timestamps have whole seconds only.
  if (c.id <= request.id || Date.parse(c.createdAt) < Date.parse(request.createdAt)) return { kind: 'ignored', why: 'written before the request was posted' };
  if (c.createdAt !== c.updatedAt) return { kind: 'ignored', why: 'edited after it was written (an edited comment never counts)' };
  if (c.isBot) return { kind: 'ignored', why: `written by a bot (${c.login})` };
  if (mine.verb === 'approve' && selfLogins.includes(c.login.toLowerCase())) return { kind: 'ignored', why: `${c.login} is the pull request's author or the run's actor, and self-approval is not allowed` };
  return { kind: 'candidate', verb: mine.verb, reason: mine.reason };
}

/** `write (role maintain)`, or just `read` when the role is named as the permission. */
export function describePermission(p: RepoPermission): string {
  return p.roleName && p.roleName !== p.permission ? `${p.permission} (role ${p.roleName})` : p.permission;
}

/**
 * Whether the author's current permission lets a reply count, as branch protection counts only
 * reviews from people with write access: GitHub's base `permission` must be admin or write
 * (maintain is reported as write). A role's name is never trusted (custom roles are named freely),
 * and any other value, including one this code does not know, refuses: a listed approver whose
 * access was lowered or removed releases nothing.
 */
export function permissionVerdict(login: string, p: RepoPermission): { ok: boolean; why: string } {
  const seen = describePermission(p);
  if (p.permission === 'admin' || p.permission === 'write') return { ok: true, why: `${login} has ${seen} permission` };
  const has = p.permission === 'none' ? `no access to the repository (permission none${p.roleName && p.roleName !== 'none' ? `, role ${p.roleName}` : ''})` : `${seen} permission`;
  return { ok: false, why: `${login} has ${has}; approving needs write, maintain or admin on the repository, also for a listed approver` };
}
