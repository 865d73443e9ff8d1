// The action's post step (runs on success, failure and cancellation): stop the gateway and seal
// the log, verify it exactly as `gateway-action verify` does, render the report, upload the
// evidence as one artifact, write the job summary and set the commit status. Every part runs even
// when an earlier one failed; the step fails at the end, naming each failure. dist/post.js only
// calls run() (action/entry/post.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sendControl } from '../gateway/daemon/control.ts';
import { unreadableLog, verifyLog, type Verification } from '../gateway/evidence/verification.ts';
import { buildTimeline, readTimeline, type Timeline } from '../gateway/evidence/timeline.ts';
import { renderReport } from '../gateway/evidence/report-html.ts';
import { RENDERERS } from '../gateway/adapters.ts';
import { GITHUB_ISSUER } from '../gateway/identity/github-oidc.ts';
import { readInputs } from './inputs.ts';
import { summarize } from './outcome.ts';
import { writeSummary } from './summary.ts';
import { jobContext, setCommitStatus } from './status.ts';
import { attestLog } from './attestation.ts';
import { runnerStep, type Step } from './step.ts';
import { readConnection } from './connection.ts';

const STOP_TIMEOUT_MS = 60_000;

/** Runs the post step; a failure fails the step (step.setFailed), never throws. */
export async function run(step: Step = runnerStep()): Promise<void> {
  try {
    await post(step);
  } catch (e) {
    step.setFailed(`gateway-action post: ${(e as Error).message}`);
  }
}

async function post(step: Step): Promise<void> {
  const env = step.env;
  const stateDir = step.state('state-dir');
  const log = step.state('log');
  if (!stateDir || !log) {
    step.info('gateway-action: the gateway did not start in this job; nothing to stop');
    return;
  }
  const inputs = readInputs(step);
  const failures: string[] = [];
  dropGatewayEnvironment(stateDir);
  const { daemonDied, head } = await stopDaemon(step, stateDir, failures);

  // Work on a copy taken now: later changes to the file on the runner change nothing.
  const outDir = fs.mkdtempSync(path.join(env.RUNNER_TEMP || os.tmpdir(), 'gateway-evidence-'));
  const copy = path.join(outDir, path.basename(log));
  let v: Verification;
  try {
    fs.copyFileSync(log, copy);
    const attested = step.state('attested') === 'true';
    const issuer = env.GATEWAY_ACTION_OIDC_ISSUER || GITHUB_ISSUER;
    v = await verifyLog(copy, attested ? { issuer, expect: env.GITHUB_REPOSITORY ? { repository: env.GITHUB_REPOSITORY } : {} } : {});
  } catch (e) {
    v = unreadableLog(log, `the session log ${log} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const substituted = substitution(v, head, step.state('key'));
  if (substituted) {
    v = { ...v, status: 'tampered', problem: substituted };
  }
  if (v.status !== 'valid') failures.push(`the session log does not verify: ${v.status}: ${v.problem}`);
  const files = fs.existsSync(copy) ? [copy] : [];
  if (v.identity?.jwks) {
    fs.writeFileSync(path.join(outDir, 'jwks.json'), JSON.stringify(v.identity.jwks, null, 2) + '\n');
    files.push(path.join(outDir, 'jwks.json'));
  }
  let timeline: Timeline;
  try {
    timeline = await readTimeline(copy);
  } catch {
    timeline = buildTimeline([]);
  }
  fs.writeFileSync(path.join(outDir, 'report.html'), renderReport(v, timeline, RENDERERS));
  files.push(path.join(outDir, 'report.html'));

  const job = await jobContext();
  const artifactName = step.state('artifact-name') || `gateway-session-log-${step.state('run')}`;
  let artifactUrl: string | null = null;
  let artifactError: string | null = null;
  try {
    const { DefaultArtifactClient } = await import('@actions/artifact');
    const up = await new DefaultArtifactClient().uploadArtifact(artifactName, files, outDir, inputs.retentionDays ? { retentionDays: inputs.retentionDays } : {});
    if (up.id && job.runUrl) artifactUrl = `${job.runUrl}/artifacts/${up.id}`;
  } catch (e) {
    artifactError = causes(e as Error);
    failures.push(`the evidence artifact could not be uploaded: ${artifactError} (the files are in ${outDir})`);
  }

  let attestation: string | null = null;
  let attestationError: string | null = null;
  if (inputs.attest && files.includes(copy)) {
    try {
      const a = await attestLog(copy, v, inputs.githubToken);
      attestation = `sha256:${a.digest}${a.id ? ` (attestation ${a.id})` : ''}`;
      step.info(`gateway-action: Sigstore attestation of the session log ${attestation}`);
    } catch (e) {
      attestationError = causes(e as Error);
      failures.push(`the Sigstore attestation of the log failed: ${attestationError} (the job needs permissions id-token: write and attestations: write)`);
    }
  }

  // Evidence that is missing (no artifact, no attestation asked for) fails the check too.
  const missing = artifactError ? 'artifact not uploaded' : attestationError ? 'attestation failed' : null;
  const outcome = summarize(v, timeline, inputs.failOn, daemonDied !== null, missing);
  const sha = job.statusSha;
  try {
    if (!inputs.githubToken) throw new Error('no github-token');
    if (!sha) throw new Error('no commit (GITHUB_SHA is not set)');
    await setCommitStatus(inputs.githubToken, job, sha, inputs.statusContext, outcome);
  } catch (e) {
    failures.push(`commit status "${inputs.statusContext}": ${(e as Error).message}`);
  }
  await writeSummary(v, outcome, { artifactName: artifactError ? null : artifactName, artifactUrl, artifactError, daemonDied, statusContext: inputs.statusContext, statusSha: sha, attestation })
    .catch((e: Error) => failures.push(`job summary: ${e.message}`));

  const t = v.chain.totals;
  // The runner keeps no outputs of a post step; these serve logs and local harnesses only.
  step.setOutput('status', outcome.state);
  step.setOutput('verification', v.status);
  step.setOutput('commands', String(t.commands));
  step.setOutput('denied', String(t.denied));
  step.setOutput('approved', String(t.approved));
  step.info(`gateway-action: ${outcome.description}; status ${inputs.statusContext}: ${outcome.state}`);
  if (inputs.logLevel === 'debug' || daemonDied) {
    // The daemon's own output (it never holds secrets: they reach it over IPC, tokens stay in memory).
    const daemonLog = path.join(stateDir, 'daemon.log');
    step.untrusted('gateway-action: daemon output', fs.existsSync(daemonLog) ? fs.readFileSync(daemonLog, 'utf8').slice(-20_000) : '(none)');
  }
  if (inputs.logLevel === 'debug') step.info(`gateway-action: verification ${JSON.stringify({ status: v.status, problem: v.problem, signing: v.chain.signing })}`);
  if (daemonDied) failures.unshift(`the gateway daemon did not stop cleanly (${daemonDied})`);
  if (outcome.state === 'failure' && failures.length === 0) failures.push(`fail-on: ${inputs.failOn}: ${outcome.description}`);
  if (failures.length > 0) step.setFailed(`gateway-action: ${failures.join('; ')}`);
}

/**
 * Asks the daemon to stop and seal. One that does not answer is killed (a hung daemon must not
 * outlive the job with secrets in memory); either way the log is what it wrote.
 */
async function stopDaemon(step: Step, stateDir: string, failures: string[]): Promise<{ daemonDied: string | null; head: string | null }> {
  try {
    const reply = await sendControl(stateDir, { op: 'stop' }, STOP_TIMEOUT_MS);
    if (!reply.ok) failures.push(`the gateway stopped but could not seal its log: ${String(reply.error)}`);
    const head = (reply as { head?: unknown }).head;
    return { daemonDied: null, head: typeof head === 'string' ? head : null };
  } catch (e) {
    const pid = Number(step.state('pid'));
    // Nothing listening: it died. Listening but silent: it hangs, and is killed.
    const gone = ['ENOENT', 'ECONNREFUSED'].includes(String((e as NodeJS.ErrnoException).code));
    let what = `pid ${pid} died during the job`;
    if (!gone) {
      try {
        if (pid > 0) process.kill(pid, 'SIGKILL');
        what = `pid ${pid} did not answer and was killed`;
      } catch {
        // Already gone.
      }
    }
    const daemonDied = `${what} (${(e as Error).message}); see ${path.join(stateDir, 'daemon.log')}`;
    step.error(`gateway-action: the gateway daemon did not stop cleanly: ${daemonDied}. The log is kept as written: verifiable up to its last signed checkpoint, and unsealed.`);
    return { daemonDied, head: null };
  }
}

/** A log that is not the one this job's gateway wrote: another key, or not the seal it reported. */
function substitution(v: Verification, head: string | null, key: string): string | null {
  const found = v.chain.signing.thumbprint;
  if (key && found && found !== key) return `the session log on the runner is not the one this job's gateway wrote: it is signed by key ${found}, the gateway's key is ${key} (a later step replaced the file)`;
  if (key && !found && v.chain.status !== 'unreadable') return `the session log on the runner has no key; the gateway's key is ${key}`;
  if (head && v.chain.sealed) {
    const last = v.chain.lastHash;
    if (last !== head) return `the session log on the runner does not end with the seal the gateway reported (${head.slice(0, 16)}…): the file was replaced`;
  }
  return null;
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


/**
 * Variables the main step exported reach this post step too (GITHUB_ENV applies to every later
 * step): the artifact upload and the GitHub API calls must not go through a forward proxy that is
 * being stopped, nor trust only a CA bundle the gateway wrote. Only values still as exported go.
 */
function dropGatewayEnvironment(stateDir: string): void {
  let exported: Record<string, string>;
  try {
    exported = readConnection(stateDir).env;
  } catch {
    return;
  }
  for (const [k, v] of Object.entries(exported)) if (process.env[k] === v) delete process.env[k];
}
