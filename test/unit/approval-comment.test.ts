// The approval comment shows the held command in a code block of its protocol's language: the
// renderer of the request's kind chooses it (sql for PostgreSQL); a kind no renderer claims gets
// a plain block that names the kind. Posted by the real approver through the real REST client
// to the local GitHub API stand-in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GitHubApprover } from '../../gateway/approval/github-approver.ts';
import type { ApprovalRequest } from '../../gateway/approval/broker.ts';
import { RepoClient } from '../../gateway/github/repo-client.ts';
import { fenced, type Renderer } from '../../gateway/evidence/renderers.ts';
import { RENDERERS } from '../../gateway/adapters.ts';
import { startGitHubApi, type GitHubApi } from '../helpers/github-api.ts';

let api: GitHubApi;
before(async () => {
  api = await startGitHubApi({ owner: 'octo-org', name: 'payments', pulls: [{ number: 7, headSha: 'a'.repeat(40), author: 'bob' }] });
});
after(async () => {
  // The approvers' pollers stop once nothing waits; let their last request finish first.
  for (let seen = -1; seen !== api.requests.length;) {
    seen = api.requests.length;
    await new Promise((r) => setTimeout(r, 300));
  }
  await api?.close();
});

const shell: Renderer = { ...RENDERERS[0]!, kinds: 'ssh.', protocol: 'SSH', searchLabel: 'command line', fence: 'sh', markdown: (c) => fenced(c.text, 'sh') };

async function commentFor(kind: string | undefined, text: string, n: number): Promise<string> {
  const approver = new GitHubApprover({
    client: new RepoClient({ owner: 'octo-org', repo: 'payments', token: api.token, apiUrl: api.url }),
    settings: { timeoutMs: 60_000, users: [], teams: [], minApprovals: 1, allowSelfApproval: false, where: { kind: 'pull-request' } },
    job: { repository: 'octo-org/payments', runId: '1', attempt: '1', actor: 'alice', triggeringActor: 'alice', sha: 'a'.repeat(40), serverUrl: 'https://github.com', eventName: 'pull_request', pr: { number: 7, author: 'bob' } },
    record: () => undefined,
    pollMs: 50,
    renderers: [...RENDERERS, shell],
  });
  const now = new Date();
  const req: ApprovalRequest = {
    id: `req${n}aaaa`, run: 'r1', session: 's1', command: `s1.${n}`, target: 'db', text, ...(kind ? { kind } : {}), rule: 'hold', reason: 'check it',
    requestedAt: now.toISOString(), expiresAt: new Date(now.getTime() + 60_000).toISOString(), digest: 'd'.repeat(64),
  };
  const before = api.comments.length;
  approver.open(req, () => undefined);
  for (let i = 0; i < 200 && api.comments.length === before; i++) await new Promise((r) => setTimeout(r, 10));
  const comment = api.comments.at(-1)!;
  const body = comment.body;
  approver.settled(req, { outcome: 'denied', by: 'gateway', via: 'gateway', at: now.toISOString(), reason: 'test over' });
  // The verdict is written on the comment: wait for it, so nothing is left in flight.
  for (let i = 0; i < 200 && !api.comments.find((c) => c.id === comment.id)!.body.includes('**Denied**'); i++) await new Promise((r) => setTimeout(r, 10));
  return body;
}

test('the code fence follows the protocol of the held command', async () => {
  assert.match(await commentFor('pg.query', 'DROP TABLE t', 1), /\n```sql\nDROP TABLE t\n```\n/);
  assert.match(await commentFor('ssh.exec', 'rm -rf /srv/cache', 2), /\n```sh\nrm -rf \/srv\/cache\n```\n/);
  // A kind nobody registered: a plain block, and the kind said in words.
  assert.match(await commentFor('warp.jump', 'engage', 3), /\nkind `warp\.jump`:\n\n```\nengage\n```\n/);
  // A text with backticks of its own cannot end the block early.
  assert.match(await commentFor('pg.query', "SELECT '```' AS x", 4), /\n````sql\nSELECT '```' AS x\n````\n/);
});
