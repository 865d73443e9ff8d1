// The policy the action enforces. On pull requests by default (policy-from: base) it is the
// base commit's version of the file, so a pull request cannot loosen the rules it runs under;
// its own version is shown as a diff in the job summary and applies once merged. Otherwise it is
// the checked-out file. Either way the main step's log names the source and the bytes' digest,
// and the daemon records both in the run-start record.
import * as core from '@actions/core';
import fs from 'node:fs';
import path from 'node:path';
import type { Policy } from '../gateway/config/policy.ts';
import type { PolicySource } from '../gateway/config/policy-source.ts';
import { loadPolicy, parsePolicy } from '../gateway/adapters.ts';
import { InputError, type ActionInputs } from './inputs.ts';
import { readBasePolicy } from './base-policy.ts';
import { policyChangeSummary } from './policy-diff.ts';
import type { Step } from './step.ts';

export interface ActionPolicy {
  policy: Policy;
  /** What the daemon is started with: the file it loads, and for a base copy its source and base dir. */
  daemon(stateDir: string): { policyFile: string; policySource: PolicySource; policyBaseDir?: string };
}

export async function loadActionPolicy(step: Step, inputs: ActionInputs, workspace: string): Promise<ActionPolicy> {
  const policyFile = path.resolve(workspace, inputs.policy);
  const checkedOut = fs.existsSync(policyFile) ? fs.readFileSync(policyFile) : null;
  if (inputs.policyFrom === 'workspace') {
    if (!checkedOut) throw new InputError(`input "policy": ${inputs.policy} does not exist in the workspace (${workspace}); check out the repository first (actions/checkout) or fix the path`);
    const source: PolicySource = { from: 'workspace' };
    const policy = loadPolicy(policyFile, { source });
    step.info(`gateway-action: policy ${inputs.policy} from the workspace (policy-from: workspace${inputs.pullRequest ? ': the pull request\'s own version applies' : ''}), sha256 ${policy.sha256}`);
    return { policy, daemon: () => ({ policyFile, policySource: source }) };
  }

  if (inputs.githubToken) step.setSecret(inputs.githubToken);
  const base = await readBasePolicy({ env: step.env, workspace, policyFile, token: inputs.githubToken });
  const { file, commit } = base.source;
  const change = policyChangeSummary(file, commit, base.bytes, checkedOut);
  if (change) {
    // Shown even if the base version turns out invalid below: the reviewer needs both.
    await core.summary.addRaw(change, true).write();
    step.info(`gateway-action: this pull request changes ${file}; the base commit's version is enforced, the pull request's takes effect after merge (the job summary shows the diff)`);
  }
  // Relative paths in the policy (ca-file, known-hosts) resolve beside the workspace file, as
  // they would if the file were checked out; errors name the commit and the path (git's rev:path).
  const options = { source: base.source, baseDir: path.dirname(policyFile) };
  const policy = parsePolicy(base.bytes, `${commit}:${file}`, options);
  step.info(`gateway-action: policy ${file} from the pull request's base commit ${commit} (${base.source.via === 'git' ? 'read from the local clone' : 'read through the GitHub API'}), sha256 ${policy.sha256}`);
  return {
    policy,
    daemon(stateDir) {
      // The daemon loads exactly these bytes; the copy is the state directory's (0700), not the workspace's.
      const copy = path.join(stateDir, 'policy-base.yml');
      fs.writeFileSync(copy, base.bytes, { mode: 0o600 });
      return { policyFile: copy, policySource: base.source, policyBaseDir: options.baseDir };
    },
  };
}
