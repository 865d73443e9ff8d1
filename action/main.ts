// The action's main step: validate inputs and policy, start the gateway daemon for the job, and
// hand later steps the connection environment. Nothing secret reaches them: the per-run password
// is masked, upstream passwords and Azure tokens stay inside the daemon.
import * as core from '@actions/core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, readInputs } from './inputs.ts';
import { daemonEnv } from './daemon-env.ts';
import { envName, PolicyError } from '../gateway/config/policy.ts';
import { loadPolicy, nodeFlags } from '../gateway/adapters.ts';
import { launchDaemon } from '../gateway/cli/daemon.ts';
import { GITHUB_TOKEN_SECRET, policyCanHold } from '../gateway/daemon/gateway.ts';
import { parseEnvFile } from '../gateway/cli/env-file.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

async function main(): Promise<void> {
  const started = performance.now();
  const inputs = readInputs();
  const workspace = process.env.GITHUB_WORKSPACE ?? process.cwd();
  const policyFile = path.resolve(workspace, inputs.policy);
  if (!fs.existsSync(policyFile)) throw new InputError(`input "policy": ${inputs.policy} does not exist in the workspace (${workspace}); check out the repository first (actions/checkout) or fix the path`);
  const policy = loadPolicy(policyFile);
  const azureTargets = policy.targets.filter((t) => t.auth.kind === 'azure').map((t) => t.name);
  if (azureTargets.length > 0 && !inputs.azure) throw new InputError(`target "${azureTargets[0]}" uses auth: azure: set the azure-client-id and azure-tenant-id inputs`);
  if (azureTargets.length > 0 && !process.env.ACTIONS_ID_TOKEN_REQUEST_URL) throw new InputError('auth: azure needs the job\'s OIDC token: add `permissions: id-token: write` to the job');
  const secrets: Record<string, string> = {};
  for (const t of policy.targets) {
    if (t.auth.kind !== 'password-env') continue;
    const v = process.env[t.auth.passwordEnv];
    if (!v) throw new InputError(`target "${t.name}": the environment variable ${t.auth.passwordEnv} (auth.password-env) is not set for this step; pass it with \`env: { ${t.auth.passwordEnv}: \${{ secrets.${t.auth.passwordEnv} }} }\``);
    secrets[t.auth.passwordEnv] = v;
    core.setSecret(v);
  }
  // The token reaches the daemon only when it may have to ask on the pull request.
  if (policyCanHold(policy)) {
    if (!inputs.githubToken) throw new InputError('the policy holds commands for approval on the pull request: the github-token input is empty');
    secrets[GITHUB_TOKEN_SECRET] = inputs.githubToken;
    core.setSecret(inputs.githubToken);
  }
  const temp = process.env.RUNNER_TEMP || os.tmpdir();
  const stateDir = fs.mkdtempSync(path.join(temp, 'gateway-action-'));
  const logDir = path.join(temp, `gateway-logs-${path.basename(stateDir).slice('gateway-action-'.length)}`);
  const { pid } = await launchDaemon({ cli: path.join(here, 'cli.js'), policyFile, stateDir, logDir, env: daemonEnv(process.env, inputs), secrets, nodeFlags: nodeFlags(policy) });
  const info = JSON.parse(fs.readFileSync(path.join(stateDir, 'daemon.json'), 'utf8')) as { log: string; run: string; key: string; attested: boolean };
  // State is written by this step alone: post compares the log it finds with this key.
  const artifactName = inputs.artifactName ?? `gateway-session-log-${process.env.GITHUB_JOB ?? 'job'}-${process.env.GITHUB_RUN_ATTEMPT ?? '1'}-${info.run}`;
  core.saveState('state-dir', stateDir);
  core.saveState('log', info.log);
  core.saveState('run', info.run);
  core.saveState('pid', String(pid));
  core.saveState('key', info.key);
  core.saveState('attested', String(info.attested));
  core.saveState('artifact-name', artifactName);
  if (!info.attested) core.warning('gateway-action: the job cannot request OIDC tokens (no `permissions: id-token: write`), so the session log is unattested: nothing will bind it to this job');

  const connection = parseEnvFile(fs.readFileSync(path.join(stateDir, 'env'), 'utf8'));
  // Every target's per-run password, not only the first's (PGPASSWORD): each URL carries one.
  for (const [k, v] of Object.entries(connection)) {
    if (k === 'PGPASSWORD') core.setSecret(v);
    else if (k.startsWith('GATEWAY_') && k.endsWith('_URL')) core.setSecret(decodeURIComponent(new URL(v).password));
  }
  for (const [k, v] of Object.entries(connection)) core.exportVariable(k, v);
  const urlVariables = Object.fromEntries(policy.targets.map((t) => [t.name, envName(t.name)]));
  core.setOutput('session-log', info.log);
  core.setOutput('run-id', info.run);
  core.setOutput('artifact-name', artifactName);
  core.setOutput('key-thumbprint', info.key);
  core.setOutput('url-variables', JSON.stringify(urlVariables));
  for (const t of policy.targets) core.setOutput(`${t.name}-url-variable`, envName(t.name));
  const ms = Math.round(performance.now() - started);
  core.info(`gateway-action: gateway ready in ${ms} ms (run ${info.run}, pid ${pid}); targets: ${policy.targets.map((t) => `${t.name} via $${envName(t.name)}`).join(', ')}`);
  core.info(`gateway-action: session log ${info.log}`);
}

main().catch((e: Error) => {
  const known = e instanceof InputError || e instanceof PolicyError;
  core.setFailed(`gateway-action: ${known ? '' : 'could not start the gateway: '}${e.message}`);
});
