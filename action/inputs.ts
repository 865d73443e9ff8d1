// The action's inputs, validated before anything starts: an error names the input and how to fix it.
import type { Step } from './step.ts';

export type FailOn = 'denied' | 'unapproved' | 'never';

export interface ActionInputs {
  policy: string;
  /** Where the policy's bytes come from: the pull request's base commit, or the checked-out file. */
  policyFrom: 'base' | 'workspace';
  /** Whether the event is about a pull request (its payload has pull_request.base.sha). */
  pullRequest: boolean;
  azure: { clientId: string; tenantId: string; authorityHost: string } | null;
  githubToken: string;
  artifactName: string | null;
  retentionDays: number | null;
  statusContext: string;
  failOn: FailOn;
  attest: boolean;
  logLevel: 'info' | 'debug';
}

export class InputError extends Error {}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Artifact names may not contain these (the artifact service refuses them). */
const BAD_ARTIFACT_CHARS = /["':<>|*?\\/\r\n]/;
/** Events whose workflow runs with the pull request's changes checked out, and whose payload names its base. */
const PULL_REQUEST_EVENTS = new Set(['pull_request', 'pull_request_target', 'pull_request_review', 'pull_request_review_comment']);

export function readInputs(step: Pick<Step, 'input' | 'env'>): ActionInputs {
  const get = (name: string): string => step.input(name).trim();
  const policy = get('policy');
  if (!policy) throw new InputError('input "policy" is required: the path of the policy file in the repository, e.g. .github/gateway.yml');
  const event = step.env.GITHUB_EVENT_NAME ?? '';
  const pullRequest = PULL_REQUEST_EVENTS.has(event);
  const policyFrom = get('policy-from') || (pullRequest ? 'base' : 'workspace');
  if (policyFrom !== 'base' && policyFrom !== 'workspace') throw new InputError(`input "policy-from" is "${policyFrom}": use base (the policy file as the pull request's base commit has it; the default on pull requests) or workspace (the checked-out file)`);
  if (policyFrom === 'base' && !pullRequest) throw new InputError(`input "policy-from" is "base", but a ${event || 'job without GITHUB_EVENT_NAME'} event has no pull request base commit: use workspace, or leave the input empty`);
  const clientId = get('azure-client-id');
  const tenantId = get('azure-tenant-id');
  if (Boolean(clientId) !== Boolean(tenantId)) {
    throw new InputError(`input "${clientId ? 'azure-tenant-id' : 'azure-client-id'}" is missing: Azure needs both azure-client-id and azure-tenant-id (the app registration's Application (client) ID and Directory (tenant) ID)`);
  }
  for (const [name, v] of [['azure-client-id', clientId], ['azure-tenant-id', tenantId]] as const) {
    if (v && !GUID.test(v)) throw new InputError(`input "${name}" is "${v}", which is not a GUID like 00000000-0000-0000-0000-000000000000 (copy it from the app registration's Overview)`);
  }
  const authorityHost = get('azure-authority-host') || 'https://login.microsoftonline.com';
  let authority: URL;
  try {
    authority = new URL(authorityHost);
  } catch {
    throw new InputError(`input "azure-authority-host" is "${authorityHost}", which is not a URL (e.g. https://login.microsoftonline.us for Azure Government)`);
  }
  if (authority.protocol !== 'https:') throw new InputError(`input "azure-authority-host" must be an https URL, not ${authorityHost}`);
  const retention = get('retention-days');
  let retentionDays: number | null = null;
  if (retention) {
    retentionDays = Number(retention);
    if (!Number.isInteger(retentionDays) || retentionDays < 1 || retentionDays > 90) throw new InputError(`input "retention-days" is "${retention}": give a whole number of days from 1 to 90, or leave it empty for the repository's default`);
  }
  const failOn = get('fail-on') || 'denied';
  if (failOn !== 'denied' && failOn !== 'unapproved' && failOn !== 'never') throw new InputError(`input "fail-on" is "${failOn}": use denied (any denied or unapproved command fails the check), unapproved (only commands held for approval and not approved), or never`);
  const artifactName = get('artifact-name') || null;
  if (artifactName && BAD_ARTIFACT_CHARS.test(artifactName)) throw new InputError(`input "artifact-name" is "${artifactName}": artifact names cannot contain " : < > | * ? \\ / or line breaks`);
  const attest = get('attest') || 'false';
  if (attest !== 'true' && attest !== 'false') throw new InputError(`input "attest" is "${attest}": use true or false`);
  if (attest === 'true' && !step.env.ACTIONS_ID_TOKEN_REQUEST_URL) throw new InputError('input "attest": a Sigstore attestation needs the job\'s OIDC token: add `permissions: id-token: write` (and `attestations: write`) to the job');
  const logLevel = get('log-level') || 'info';
  if (logLevel !== 'info' && logLevel !== 'debug') throw new InputError(`input "log-level" is "${logLevel}": use info or debug`);
  const statusContext = get('status-context') || 'gateway/audit';
  return {
    policy,
    policyFrom,
    pullRequest,
    azure: clientId ? { clientId, tenantId, authorityHost: authority.toString().replace(/\/$/, '') } : null,
    githubToken: get('github-token'),
    artifactName,
    retentionDays,
    statusContext,
    failOn,
    attest: attest === 'true',
    logLevel,
  };
}
