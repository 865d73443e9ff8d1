// The action's main step: validate inputs and policy, start the gateway daemon for the job, and
// hand later steps the connection environment. Nothing secret reaches them unmasked: the values
// the adapters declare secret (per-run passwords) are masked, upstream secrets and Azure tokens
// stay inside the daemon. dist/main.js only calls run() (action/entry/main.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, readInputs } from './inputs.ts';
import { daemonEnv } from './daemon-env.ts';
import { readConnection } from './connection.ts';
import { runnerStep, type Step } from './step.ts';
import { PolicyError } from '../gateway/config/policy.ts';
import { nodeFlags } from '../gateway/adapters.ts';
import { loadActionPolicy } from './policy-load.ts';
import { BasePolicyError } from './base-policy.ts';
import { launchDaemon } from '../gateway/cli/daemon.ts';
import { GITHUB_TOKEN_SECRET, policyCanHold } from '../gateway/daemon/gateway.ts';
import { targetVariable } from '../gateway/core/target-variable.ts';

/** The CLI the daemon runs: dist/cli.js, beside the bundle this code is in. */
const BUNDLED_CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cli.js');

/** Runs the main step; a failure fails the step (step.setFailed), never throws. */
export async function run(step: Step = runnerStep(), cli: string = BUNDLED_CLI): Promise<void> {
  try {
    await start(step, cli);
  } catch (e) {
    const known = e instanceof InputError || e instanceof PolicyError || e instanceof BasePolicyError;
    step.setFailed(`gateway-action: ${known ? '' : 'could not start the gateway: '}${(e as Error).message}`);
  }
}

async function start(step: Step, cli: string): Promise<void> {
  const started = performance.now();
  const env = step.env;
  const inputs = readInputs(step);
  const workspace = env.GITHUB_WORKSPACE ?? process.cwd();
  // On a pull request, by default, the base commit's version: nothing starts if it cannot be read.
  const loaded = await loadActionPolicy(step, inputs, workspace);
  const policy = loaded.policy;
  const azureTarget = policy.targets.find((t) => t.azure)?.name;
  if (azureTarget && !inputs.azure) throw new InputError(`target "${azureTarget}" signs in with an Entra ID token (auth: azure): set the azure-client-id and azure-tenant-id inputs`);
  if (azureTarget && !env.ACTIONS_ID_TOKEN_REQUEST_URL) throw new InputError(`target "${azureTarget}" signs in with an Entra ID token, which needs the job's OIDC token: add \`permissions: id-token: write\` to the job`);
  // Upstream secrets go to the daemon over IPC, never into its environment or a later step's.
  const secrets: Record<string, string> = {};
  for (const t of policy.targets) {
    for (const name of t.secretEnv) {
      const v = env[name];
      if (!v) throw new InputError(`target "${t.name}": the environment variable ${name} (its upstream secret) is not set for this step; pass it with \`env: { ${name}: \${{ secrets.${name} }} }\``);
      secrets[name] = v;
      maskSecret(step, v);
    }
  }
  // The token reaches the daemon only when it may have to ask on the pull request.
  if (policyCanHold(policy)) {
    if (!inputs.githubToken) throw new InputError('the policy holds commands for approval on the pull request: the github-token input is empty');
    secrets[GITHUB_TOKEN_SECRET] = inputs.githubToken;
    step.setSecret(inputs.githubToken);
  }
  const temp = env.RUNNER_TEMP || os.tmpdir();
  const stateDir = fs.mkdtempSync(path.join(temp, 'gateway-action-'));
  const logDir = path.join(temp, `gateway-logs-${path.basename(stateDir).slice('gateway-action-'.length)}`);
  const { pid } = await launchDaemon({ cli, ...loaded.daemon(stateDir), stateDir, logDir, env: daemonEnv(env, inputs), secrets, nodeFlags: nodeFlags(policy) });
  const info = JSON.parse(fs.readFileSync(path.join(stateDir, 'daemon.json'), 'utf8')) as { log: string; run: string; key: string; attested: boolean };
  // State is written by this step alone: post compares the log it finds with this key. Saved
  // before anything else can fail, so post stops the daemon whatever happens next.
  const artifactName = inputs.artifactName ?? `gateway-session-log-${env.GITHUB_JOB ?? 'job'}-${env.GITHUB_RUN_ATTEMPT ?? '1'}-${info.run}`;
  step.saveState('state-dir', stateDir);
  step.saveState('log', info.log);
  step.saveState('run', info.run);
  step.saveState('pid', String(pid));
  step.saveState('key', info.key);
  step.saveState('attested', String(info.attested));
  step.saveState('artifact-name', artifactName);
  if (!info.attested) step.warning('gateway-action: the job cannot request OIDC tokens (no `permissions: id-token: write`), so the session log is unattested: nothing will bind it to this job');

  // Masked first, exported after: every secret value the adapters declare, whatever it is called.
  const connection = readConnection(stateDir);
  for (const s of connection.secrets) if (s) maskSecret(step, s);
  for (const [k, v] of Object.entries(connection.env)) step.exportVariable(k, v);
  // `gateway-action` for later steps (`gateway-action exec --confine -- ./agent.sh`): this
  // action's own Node and CLI, on the PATH; the state directory it needs is exported too.
  step.addPath(writeCliShim(temp, path.basename(stateDir), cli));
  step.exportVariable('GATEWAY_STATE_DIR', stateDir);
  const urlVariables = Object.fromEntries(policy.targets.map((t) => [t.name, targetVariable(t.name)]));
  step.setOutput('session-log', info.log);
  step.setOutput('run-id', info.run);
  step.setOutput('artifact-name', artifactName);
  step.setOutput('key-thumbprint', info.key);
  step.setOutput('url-variables', JSON.stringify(urlVariables));
  for (const t of policy.targets) step.setOutput(`${t.name}-url-variable`, targetVariable(t.name));
  const ms = Math.round(performance.now() - started);
  step.info(`gateway-action: gateway ready in ${ms} ms (run ${info.run}, pid ${pid}); targets: ${policy.targets.map((t) => `${t.name} via $${targetVariable(t.name)}`).join(', ')}`);
  step.info(`gateway-action: session log ${info.log}`);
}

/** A directory holding a `gateway-action` script that runs this action's CLI with this Node. */
function writeCliShim(temp: string, run: string, cli: string): string {
  const bin = path.join(temp, `gateway-action-bin-${run}`);
  fs.mkdirSync(bin, { recursive: true, mode: 0o755 });
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  fs.writeFileSync(path.join(bin, 'gateway-action'), `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(cli)} "$@"\n`, { mode: 0o755 });
  return bin;
}

/**
 * Masks a secret; a multi-line one (a private key) line by line as well, since the runner
 * matches a registered mask within one line of output.
 */
function maskSecret(step: Step, value: string): void {
  step.setSecret(value);
  const lines = value.split(/\r?\n/).map((l) => l.trim());
  if (lines.length > 1) for (const line of lines) if (line.length >= 8 && !/^-----(BEGIN|END) /.test(line)) step.setSecret(line);
}
