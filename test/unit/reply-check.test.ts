// What a PR comment can be as a verdict, decided from the comment alone: the rules a forged
// approval has to get past before the approver asks GitHub whether its author may approve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkReply, permissionVerdict, replyCommands } from '../../gateway/approval/reply-check.ts';
import type { IssueComment } from '../../gateway/github/repo-client.ts';

const request = { id: 1000, createdAt: '2026-11-22T10:00:00Z' };
const comment = (over: Partial<IssueComment>): IssueComment => ({ id: 1001, body: '/approve abcdefghjk', login: 'dave', isBot: false, createdAt: '2026-11-22T10:00:05Z', updatedAt: '2026-11-22T10:00:05Z', url: 'https://github.com/o/r/pull/7#issuecomment-1001', ...over });

test('replies are /approve ID and /deny ID [reason] lines, anywhere in the comment', () => {
  assert.deepEqual(replyCommands('LGTM\n  /approve AbCdEfGhJk  \nthanks'), [{ verb: 'approve', id: 'abcdefghjk', reason: '' }]);
  assert.deepEqual(replyCommands('/deny abcdefghjk not during the freeze'), [{ verb: 'deny', id: 'abcdefghjk', reason: 'not during the freeze' }]);
  assert.deepEqual(replyCommands('please /approve abcdefghjk'), [], 'a command must start its line');
  assert.deepEqual(replyCommands('/approved abcdefghjk'), []);
  assert.deepEqual(replyCommands('> /approve abcdefghjk'), [], 'a quoted approval is not one');
});

test('each rule that needs no API call rejects its forgery, with the reason', () => {
  const ok = checkReply(comment({}), 'abcdefghjk', request, ['bob', 'alice']);
  assert.deepEqual(ok, { kind: 'candidate', verb: 'approve', reason: '' });
  assert.deepEqual(checkReply(comment({ body: 'nice' }), 'abcdefghjk', request, []), { kind: 'unrelated' });
  const why = (c: Partial<IssueComment>): string => {
    const r = checkReply(comment(c), 'abcdefghjk', request, ['bob', 'alice']);
    return r.kind === 'ignored' ? r.why : r.kind;
  };
  assert.match(why({ body: '/approve zzzzzzzzzz' }), /names request zzzzzzzzzz, not abcdefghjk/);
  assert.match(why({ id: 999 }), /written before the request/);
  assert.match(why({ createdAt: '2026-11-22T09:59:59Z', updatedAt: '2026-11-22T09:59:59Z' }), /written before the request/);
  assert.match(why({ updatedAt: '2026-11-22T10:01:00Z' }), /edited after it was written/);
  assert.match(why({ isBot: true, login: 'renovate[bot]' }), /written by a bot/);
  assert.match(why({ login: 'Bob' }), /Bob is the pull request's author or the run's actor/);
  assert.equal(why({ login: 'bob' }).includes('self-approval'), true);
  assert.equal(checkReply(comment({ login: 'bob' }), 'abcdefghjk', request, []).kind, 'candidate', 'self-approval allowed by policy');
  assert.deepEqual(checkReply(comment({ body: '/deny abcdefghjk no' }), 'abcdefghjk', request, []), { kind: 'candidate', verb: 'deny', reason: 'no' });
});

test('commands inside code blocks and quotes are text, not verdicts', () => {
  assert.deepEqual(replyCommands('Is this right?\n```sql\nDROP TABLE x /*\n/approve abcdefghjk\n*/\n```'), []);
  assert.deepEqual(replyCommands('~~~\n/approve abcdefghjk\n~~~\n/deny abcdefghjk no'), [{ verb: 'deny', id: 'abcdefghjk', reason: 'no' }]);
  assert.deepEqual(replyCommands('    /approve abcdefghjk'), [], 'indented code');
  assert.deepEqual(replyCommands('````\n```\n/approve abcdefghjk\n````'), [], 'a shorter fence does not close a longer one');
});

test('only write access counts, judged on GitHub\'s base permission, never on a role name', () => {
  const v = (permission: string, roleName: string | null): string => {
    const r = permissionVerdict('lena', { permission, roleName });
    return `${r.ok}:${r.why}`;
  };
  // GitHub reports maintain as write and a custom role as the base role it inherits.
  assert.equal(v('admin', 'admin'), 'true:lena has admin permission');
  assert.equal(v('write', 'write'), 'true:lena has write permission');
  assert.equal(v('write', 'maintain'), 'true:lena has write (role maintain) permission');
  assert.equal(v('write', 'deployer'), 'true:lena has write (role deployer) permission');
  // triage is reported as read; a custom role named like a writer is still only what its base is.
  assert.match(v('read', 'triage'), /^false:lena has read \(role triage\) permission; approving needs write, maintain or admin on the repository, also for a listed approver$/);
  assert.match(v('read', 'write'), /^false:lena has read \(role write\) permission/);
  assert.match(v('read', 'read'), /^false:lena has read permission;/);
  assert.match(v('none', null), /^false:lena has no access to the repository \(permission none\);/);
  // A value this code does not know refuses (fail closed), whatever the role is called.
  assert.match(v('maintain', 'maintain'), /^false:/);
  assert.match(v('push', 'admin'), /^false:/);
  assert.match(v('', null), /^false:/);
});
