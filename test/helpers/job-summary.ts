// The job summary the post step would write for a log, rendered through the real summary code
// into a file of the test's (GITHUB_STEP_SUMMARY; @actions/core keeps the file it first wrote
// to, so the one file is emptied for each summary). The caller restores GITHUB_STEP_SUMMARY.
import fs from 'node:fs';
import path from 'node:path';
import { verifyLog } from '../../gateway/evidence/verification.ts';
import { readTimeline } from '../../gateway/evidence/timeline.ts';
import { summarize } from '../../action/outcome.ts';
import { writeSummary } from '../../action/summary.ts';

export async function jobSummaryOf(log: string, dir: string): Promise<{ html: string; description: string; outcome: ReturnType<typeof summarize> }> {
  const file = path.join(dir, 'summary.md');
  fs.writeFileSync(file, '');
  process.env.GITHUB_STEP_SUMMARY = file;
  const v = await verifyLog(log);
  const o = summarize(v, await readTimeline(log), 'denied', false);
  await writeSummary(v, o, { artifactName: 'a', artifactUrl: null, artifactError: null, daemonDied: null, statusContext: 'gateway/audit', statusSha: null, attestation: null });
  return { html: fs.readFileSync(file, 'utf8'), description: o.description, outcome: o };
}
