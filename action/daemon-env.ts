// The daemon's environment, built from an allowlist: what it needs to attest the log, reach
// Azure and describe the job, and nothing a later step or a leak could abuse (no INPUT_*, no
// artifact or cache runtime tokens, no GITHUB_TOKEN, no file-command paths, no upstream secrets).
import type { ActionInputs } from './inputs.ts';

const PASS = [
  'PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'RUNNER_TEMP', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
  'GITHUB_ACTIONS', 'GITHUB_REPOSITORY', 'GITHUB_REPOSITORY_OWNER', 'GITHUB_WORKFLOW_REF', 'GITHUB_RUN_ID', 'GITHUB_RUN_ATTEMPT',
  'GITHUB_SHA', 'GITHUB_REF', 'GITHUB_HEAD_REF', 'GITHUB_BASE_REF', 'GITHUB_EVENT_NAME', 'GITHUB_EVENT_PATH', 'GITHUB_ACTOR',
  'GITHUB_TRIGGERING_ACTOR', 'GITHUB_JOB', 'GITHUB_SERVER_URL', 'GITHUB_API_URL', 'GITHUB_WORKSPACE',
  'ACTIONS_ID_TOKEN_REQUEST_URL', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN',
  'GATEWAY_ACTION_RUNTIME_DIR', 'GATEWAY_ENVIRONMENT', 'GATEWAY_ACTION_APPROVAL_POLL_MS',
  // Self-hosted runners behind a proxy reach Entra ID through it.
  'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy',
  // The runner's orphan clean-up finds leftover processes of the job by this marker.
  'RUNNER_TRACKING_ID',
];

export function daemonEnv(from: NodeJS.ProcessEnv, inputs: ActionInputs): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of PASS) if (from[k] !== undefined) env[k] = from[k];
  if (inputs.azure) {
    env.AZURE_CLIENT_ID = inputs.azure.clientId;
    env.AZURE_TENANT_ID = inputs.azure.tenantId;
    env.AZURE_AUTHORITY_HOST = inputs.azure.authorityHost;
  }
  return env;
}
