// Which kubectl the Kubernetes tests run: the one on PATH when it execs over WebSocket (>= 1.30;
// /usr/bin/kubectl is v1.32 on this project's Debian 12 images), otherwise the static v1.33 that
// scripts/ensure-kubectl.sh unpacks into node_modules/.cache/kubectl (CI runs that script).
// No test skips for want of kubectl: this throws, saying what to run.
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const UNPACKED_KUBECTL = path.join(ROOT, 'node_modules/.cache/kubectl/kubectl');

function clientMinor(file: string): number | undefined {
  try {
    const out = execFileSync(file, ['version', '--client', '-o', 'json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 });
    const minor = Number.parseInt((JSON.parse(out) as { clientVersion?: { minor?: string } }).clientVersion?.minor ?? '', 10);
    return Number.isInteger(minor) ? minor : undefined;
  } catch {
    return undefined;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, name);
    try { accessSync(file, constants.X_OK); return file; } catch { /* next */ }
  }
  return undefined;
}

let found: string | undefined;

/** The absolute path of a kubectl >= 1.30. */
export function kubectlPath(): string {
  if (found) return found;
  const candidates = [onPath('kubectl'), UNPACKED_KUBECTL].filter((f): f is string => !!f);
  for (const file of candidates) {
    const minor = clientMinor(file);
    if (minor !== undefined && minor >= 30) { found = file; return file; }
  }
  throw new Error('no kubectl >= 1.30 (WebSocket exec) found on PATH or in node_modules/.cache/kubectl: run `bash scripts/ensure-kubectl.sh`');
}

export interface KubectlRun { code: number; stdout: string; stderr: string }

/**
 * Runs kubectl with a kubeconfig, asynchronously (the stand-ins the tests start answer from the
 * test's own process): stdin from `input`, extra variables, killed after `timeoutMs`.
 */
export function runKubectl(kubeconfig: string, home: string, args: string[], opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<KubectlRun> {
  return new Promise((resolve) => {
    const child = spawn(kubectlPath(), args, { env: { PATH: process.env.PATH!, HOME: home, KUBECONFIG: kubeconfig, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
