// What the daemon hands later steps, read from STATE/connection.json (written by `gateway-action
// daemon` from its adapters' exports): the variables to export and the secret values among them
// to mask. The action masks exactly what the adapters declare; it guesses nothing by name. A
// file it cannot fully read is refused whole: nothing is exported without knowing what to mask.
import fs from 'node:fs';
import path from 'node:path';

export interface Connection {
  env: Record<string, string>;
  secrets: string[];
  /** Files the adapters wrote into the state directory (a kubeconfig, a CA bundle); the variables name them. */
  files: { name: string; path: string; mode: number }[];
}

/** A name GITHUB_ENV can carry on one line, as a shell variable is named. */
const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function readConnection(stateDir: string): Connection {
  const file = path.join(stateDir, 'connection.json');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`the gateway's connection file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); nothing was exported`);
  }
  const bad = (what: string): never => {
    throw new Error(`the gateway's connection file ${file} is malformed (${what}); nothing was exported`);
  };
  if (!isObject(raw)) return bad('not an object');
  if (!isObject(raw.env)) return bad('env is not an object');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw.env)) {
    if (!VARIABLE.test(k)) bad(`env has a variable named ${JSON.stringify(k)}`);
    if (typeof v !== 'string') bad(`env.${k} is not a string`);
    env[k] = v as string;
  }
  if (!Array.isArray(raw.secrets) || !raw.secrets.every((s) => typeof s === 'string')) return bad('secrets is not a list of strings');
  const files = raw.files ?? [];
  if (!Array.isArray(files) || !files.every((f) => isObject(f) && typeof f.name === 'string' && typeof f.path === 'string' && typeof f.mode === 'number')) return bad('files is not a list of {name, path, mode}');
  return { env, secrets: raw.secrets as string[], files: files as Connection['files'] };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
