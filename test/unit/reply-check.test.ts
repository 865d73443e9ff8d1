// What a PR comment can be as a verdict, decided from the comment alone: the rules a forged
// approval has to get past before the approver asks GitHub whether its author may approve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkReply, replyCommands } from '../../gateway/approval/reply-check.ts';
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
