// The connection environment as KEY=VALUE lines (the format of $GITHUB_ENV and `set -a; . file`).
export function formatEnv(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}=${v}\n`).join('');
}
