// The action's post step (runs on success, failure and cancellation): stop the gateway and seal
// the log, verify it exactly as `gateway-action verify` does, render the report, upload the
// evidence as one artifact, write the job summary and set the commit status.
import * as core from '@actions/core';
import fs from 'node:fs';
import path from 'node:path';
import { sendControl } from '../gateway/daemon/control.ts';
import { verifyLog } from '../gateway/evidence/verification.ts';
import { readTimeline } from '../gateway/evidence/timeline.ts';
import { renderReport } from '../gateway/evidence/report-html.ts';
import { GITHUB_ISSUER } from '../gateway/identity/github-oidc.ts';
import { readInputs } from './inputs.ts';
import { summarize } from './outcome.ts';
import { writeSummary } from './summary.ts';
import { setCommitStatus, statusSha } from './status.ts';
import { attestLog } from './attestation.ts';

async function post(): Promise<void> {
  const stateDir = core.getState('state-dir');
  const log = core.getState('log');
  if (!stateDir || !log) {
    core.info('gateway-action: the gateway did not start in this job; nothing to stop');
    return;
  }
  const inputs = readInputs();
  const failures: string[] = [];
  let daemonDied: string | null = null;
  try {
    const reply = await sendControl(stateDir, { op: 'stop' }, 60_000);
    if (!reply.ok) failures.push(`the gateway stopped but could not seal its log: ${String(reply.error)}`);
  } catch (e) {
    daemonDied = `pid ${core.getState('pid')} did not answer (${(e as Error).message}); see ${path.join(stateDir, 'daemon.log')}`;
    core.error(`gateway-action: the gateway daemon died during the job: ${daemonDied}. Every command it forwarded is in the log, which ends unsealed.`);
  }
  const outDir = fs.mkdtempSync(path.join(path.dirname(log), 'evidence-'));
  const issuer = process.env.GATEWAY_ACTION_OIDC_ISSUER || GITHUB_ISSUER;
  const expect = process.env.GITHUB_REPOSITORY ? { repository: process.env.GITHUB_REPOSITORY } : {};
  const attested = fs.readFileSync(log, 'utf8').slice(0, 20_000).includes('"kind":"github-oidc"');
  const v = await verifyLog(log, attested ? { issuer, expect } : {});
  const files = [path.join(outDir, path.basename(log))];
  fs.copyFileSync(log, files[0]!);
  if (v.identity?.jwks) {
    files.push(path.join(outDir, 'jwks.json'));
    fs.writeFileSync(files[1]!, JSON.stringify(v.identity.jwks, null, 2) + '\n');
  }
  const timeline = readTimeline(log);
  const report = path.join(outDir, 'report.html');
  fs.writeFileSync(report, renderReport(v, timeline));
  files.push(report);
  if (v.status !== 'valid') failures.push(`the session log does not verify: ${v.status}: ${v.problem}`);
  const outcome = summarize(v, timeline, inputs.failOn, daemonDied !== null);

  const runId = core.getState('run');
  const artifactName = inputs.artifactName ?? `gateway-session-log-${process.env.GITHUB_JOB ?? 'job'}-${process.env.GITHUB_RUN_ATTEMPT ?? '1'}-${runId}`;
  let artifactUrl: string | null = null;
  let artifactError: string | null = null;
  try {
    const { DefaultArtifactClient } = await import('@actions/artifact');
    const up = await new DefaultArtifactClient().uploadArtifact(artifactName, files, outDir, inputs.retentionDays ? { retentionDays: inputs.retentionDays } : {});
    if (up.id && process.env.GITHUB_SERVER_URL) artifactUrl = `${process.env.GITHUB_SERVER_URL}/${process.env.GITHUB_REPOSITORY}/actions/runs/${process.env.GITHUB_RUN_ID}/artifacts/${up.id}`;
  } catch (e) {
    artifactError = (e as Error).message;
    failures.push(`the evidence artifact could not be uploaded: ${artifactError} (the files are in ${outDir})`);
  }

  let attestation: string | null = null;
  if (inputs.attest) {
    try {
      const a = await attestLog(log, v, inputs.githubToken);
      attestation = `sha256:${a.digest}${a.id ? ` (attestation ${a.id})` : ''}`;
      core.info(`gateway-action: Sigstore attestation of the session log ${attestation}`);
    } catch (e) {
      failures.push(`the Sigstore attestation of the log failed: ${causes(e as Error)} (the job needs permissions id-token: write and attestations: write)`);
    }
  }

  const sha = statusSha(process.env);
  try {
    if (!inputs.githubToken) throw new Error('no github-token');
    if (!sha) throw new Error('no commit (GITHUB_SHA is not set)');
    await setCommitStatus(inputs.githubToken, process.env, sha, inputs.statusContext, outcome);
  } catch (e) {
    failures.push(`commit status "${inputs.statusContext}": ${(e as Error).message}`);
  }
  await writeSummary(v, outcome, { artifactName: artifactError ? null : artifactName, artifactUrl, artifactError, daemonDied, statusContext: inputs.statusContext, statusSha: sha, attestation }).catch((e: Error) => failures.push(`job summary: ${e.message}`));

  const t = v.chain.totals;
  core.setOutput('status', outcome.state);
  core.setOutput('verification', v.status);
  core.setOutput('commands', String(t.commands));
  core.setOutput('denied', String(t.denied));
  core.setOutput('approved', String(t.approved));
  core.setOutput('masked', String(t.maskedCommands));
  core.setOutput('errors', String(t.errors));
  core.setOutput('artifact-name', artifactName);
  core.info(`gateway-action: ${outcome.description}; status ${inputs.statusContext}: ${outcome.state}`);
  if (inputs.logLevel === 'debug' || daemonDied) {
    // The daemon's own output (it never holds secrets: they reach it over IPC, tokens stay in memory).
    const daemonLog = path.join(stateDir, 'daemon.log');
    core.startGroup('gateway-action: daemon output');
    core.info(fs.existsSync(daemonLog) ? fs.readFileSync(daemonLog, 'utf8').slice(-20_000) : '(none)');
    core.endGroup();
  }
  if (inputs.logLevel === 'debug') core.info(`gateway-action: verification ${JSON.stringify({ status: v.status, problem: v.problem, signing: v.chain.signing })}`);
  if (daemonDied) failures.unshift(`the gateway daemon died during the job (${daemonDied})`);
  if (outcome.state === 'failure' && failures.length === 0) failures.push(`fail-on: ${inputs.failOn}: ${outcome.description}`);
  if (failures.length > 0) core.setFailed(`gateway-action: ${failures.join('; ')}`);
}

/** An error with the causes libraries wrap it around ("error creating signing certificate: fetch failed: ENOTFOUND ..."). */
function causes(e: Error): string {
  const parts: string[] = [];
  for (let c: unknown = e; c instanceof Error && parts.length < 5; c = c.cause) {
    const code = (c as NodeJS.ErrnoException).code;
    const host = (c as { hostname?: string }).hostname;
    parts.push(`${c.message}${code && !c.message.includes(code) ? ` (${code}${host ? ` ${host}` : ''})` : ''}`);
  }
  return parts.join(': ');
}

post().catch((e: Error) => core.setFailed(`gateway-action post: ${e.message}`));
