// What an SSH exec line runs, read by a real shell parser (shell-parser.ts) the way bash would
// run it: one unit of facts per simple command anywhere in the line (through lists, pipes,
// subshells, substitutions, here-docs, control flow, functions and the wrappers that run their
// arguments), for the policy's `ssh`, `command`, `program`, `option` and `path` conditions.
// What cannot be known statically is named in `unclassified`; the units still say what could
// be read, so a deny rule still names itself (the gate decides both, strictest wins).
// docs/ssh.md, "How exec lines are read", is the user's account of this.
import { loadShellParser as loadParser } from './shell-parser.ts';
import type { Reading, Scope } from './shell-command.ts';
import { normalisePath } from './shell-paths.ts';
import { readScript } from './shell-walk.ts';

export type SshClass = 'exec' | 'shell' | 'sftp' | 'scp' | 'port-forward' | 'agent-forward' | 'x11';

/** The classes `ssh:` conditions name. */
export const SSH_CLASSES: readonly SshClass[] = ['exec', 'shell', 'sftp', 'scp', 'port-forward', 'agent-forward', 'x11'];

/** One unit of facts the policy decides: one simple command of an exec line (or one channel/file op). */
export interface SshUnit {
  ssh: SshClass;
  /**
   * The command's words joined by single spaces, as a fact pattern: what the running shell fills
   * in (an expansion) is `*`, an unquoted glob stays a glob, and a literal `*`, `?`, `[`, `]` or
   * `\` is escaped with `\`.
   */
  command?: string;
  /** The command name's basename (`/bin/rm` is `rm`). */
  program?: string;
  /** Its options: `-rf` holds `-rf`, `-r`, `-f`; `--recursive=x` holds `--recursive`; `*` may be any. */
  options?: string[];
  /** Absolute, normalised paths it names, as fact patterns (`/etc/sha*` for a glob). */
  paths?: string[];
}

export interface ExecReading {
  units: SshUnit[];
  /** Why some part cannot be known statically (null when everything was read). */
  unclassified: string | null;
}

/** Loads the shell parser (about 40 ms, once); readExecLine waits for it anyway. */
export function loadShellParser(): Promise<void> {
  return loadParser();
}

/** At most this many reasons are named in `unclassified`. */
const MAX_REASONS = 5;

/**
 * Reads an exec line. `ctx.home` is the login user's home on the host: the working directory
 * the line starts in and what `~` stands for.
 */
export async function readExecLine(line: string, ctx: { home: string }): Promise<ExecReading> {
  await loadParser();
  const home = ctx.home.startsWith('/') ? normalisePath(ctx.home) : null;
  const reading: Reading = {
    units: [],
    reasons: new Set(),
    readScript: (script, scope) => readScript(reading, script, scope),
  };
  const scope: Scope = { home, cwd: home === null ? null : [home], depth: 0 };
  try {
    readScript(reading, line, scope);
  } catch (e) {
    // A bound (units, nesting) or a stack exhausted by a pathological line.
    reading.reasons.add(e instanceof RangeError ? 'the line nests too deeply to read' : (e as Error).message);
  }
  const reasons = [...reading.reasons];
  if (reading.units.length === 0 && reasons.length === 0) reasons.push('the line runs no command');
  const unclassified = reasons.length === 0 ? null : reasons.slice(0, MAX_REASONS).join('; ') + (reasons.length > MAX_REASONS ? `; and ${reasons.length - MAX_REASONS} more` : '');
  return { units: reading.units, unclassified };
}
