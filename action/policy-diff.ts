// What a pull request changes in the policy, for the job summary: a unified diff from the base
// commit's version (the one enforced) to the checked-out one (which applies once merged). The
// diff is bounded (a policy file is short; a huge change is shown in part and says so) and
// fenced so that nothing in the pull request's text can end the block or render as Markdown.
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import { esc } from '../gateway/evidence/html-text.ts';

export const MAX_DIFF_LINES = 200;
export const MAX_DIFF_CHARS = 20_000;
/** Past this many changed lines the diff is not computed at all (it stays cheap on any input). */
const MAX_EDIT_LENGTH = 5_000;

/** The unified diff, cut to the bounds; null when it cannot be computed within them. */
export function policyDiff(file: string, commit: string, base: string, pr: string): { text: string; omittedLines: number } | null {
  const patch = createTwoFilesPatch(`a/${file}`, `b/${file}`, base, pr, `base ${commit.slice(0, 12)}`, 'pull request', { context: 3, headerOptions: FILE_HEADERS_ONLY, maxEditLength: MAX_EDIT_LENGTH });
  if (patch === undefined) return null;
  const lines = patch.replace(/\n$/, '').split('\n');
  const shown: string[] = [];
  let chars = 0;
  for (const line of lines) {
    if (shown.length >= MAX_DIFF_LINES || chars + line.length + 1 > MAX_DIFF_CHARS) break;
    shown.push(line);
    chars += line.length + 1;
  }
  return { text: shown.join('\n'), omittedLines: lines.length - shown.length };
}

/**
 * The job summary's section on a changed policy, or null when the pull request leaves the file
 * as the base has it. `pr` null: the workspace has no such file (deleted, or nothing checked out).
 */
export function policyChangeSummary(file: string, commit: string, base: Buffer, pr: Buffer | null): string | null {
  if (pr !== null && base.equals(pr)) return null;
  const head = `<h3>gateway-action: this pull request changes the policy</h3>\n\n`;
  const enforced = `<p>The gateway enforces <code>${esc(file)}</code> as the base commit <code>${esc(commit.slice(0, 12))}</code> has it. `;
  if (pr === null) return `${head}${enforced}The workspace has no such file: the pull request deletes it (or the repository is not checked out). A change to the policy takes effect only after the pull request is merged.</p>\n`;
  const diff = policyDiff(file, commit, base.toString('utf8'), pr.toString('utf8'));
  const intro = `${head}${enforced}The pull request's version differs; it takes effect only after the pull request is merged.</p>\n\n`;
  if (diff === null) return `${intro}<p>The change is too large to show here (more than ${MAX_EDIT_LENGTH} changed lines); see the pull request's files.</p>\n`;
  const fence = '`'.repeat(Math.max(3, ...[...diff.text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
  const more = diff.omittedLines > 0 ? `\n<p>${diff.omittedLines} more line${diff.omittedLines === 1 ? '' : 's'} of the diff not shown; see the pull request's files.</p>\n` : '';
  return `${intro}${fence}diff\n${diff.text}\n${fence}\n${more}`;
}
