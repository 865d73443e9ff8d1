// Drives a JavaScript action the way the GitHub Actions runner does, so the real dist/main.js and
// dist/post.js can be exercised end to end without a runner:
//
// - inputs become INPUT_<NAME> (upper-cased, spaces to '_', hyphens kept), declared defaults from
//   action.yml fill the gaps (with `${{ github.token }}` and friends resolved from env);
// - every step (main, each `run` step, post) gets fresh file-command files under
//   RUNNER_TEMP/_runner_file_commands (GITHUB_OUTPUT, GITHUB_ENV, GITHUB_STATE, GITHUB_PATH,
//   GITHUB_STEP_SUMMARY), parsed after the step in both the `NAME=value` and the heredoc form;
//   GITHUB_ENV and GITHUB_PATH apply to later steps, GITHUB_STATE from main reaches post as
//   STATE_<name>;
// - workflow commands on stdout/stderr are processed (add-mask, error/warning/notice, the
//   deprecated set-output/save-state, stop-commands; set-env/add-path are refused as on GitHub);
// - `run` steps are `bash -e <script>` in the workspace, without the INPUT_* variables;
// - a failing step skips the following ones (unless `if: always()` ...), post still runs;
// - cancellation and step timeouts go as the runner does it (ProcessInvoker): SIGINT to the
//   step's process, SIGTERM if it is still alive 7.5 s later, SIGKILL 2.5 s after that (the
//   grace is scaled by killAfterMs); children are not signalled, they are left to
// - the orphan cleanup at job end: every process still alive that carries the job's markers in
//   its environment (RUNNER_TRACKING_ID, which the runner itself uses for this, and
//   GATEWAY_TEST_JOB, which a process clearing RUNNER_TRACKING_ID to escape still carries) is
//   reported as an orphan and killed;
// - a step ends when its process exits; when a background process still holds its stdout or
//   stderr, the runner waits 5 s for them first (streamWaitMs), which StepResult reports.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';

export type Outcome = 'success' | 'failure' | 'cancelled' | 'skipped';

export interface StepResult {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** 'main', 'post' or 'steps[i]'. */
  name: string;
  /** As `steps.<id>.outcome`: failure for a non-zero exit, a timeout or a bad file command. */
  outcome: Outcome;
  /** This step's GITHUB_OUTPUT (and legacy set-output). */
  outputs: Record<string, string>;
  /** The process had exited but something (a background child) still held its stdout/stderr. */
  streamsHeldOpen: boolean;
}

export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  message: string;
  /** The step that produced it ('runner' for the harness's own job-level messages). */
  step: string;
  properties: Record<string, string>;
}

export interface OrphanProcess { pid: number; cmdline: string; /** Still carries RUNNER_TRACKING_ID, so the real runner would kill it too. */ runnerWouldKill: boolean }

export interface JobResult {
  main: StepResult;
  /** One per `steps` entry, in order; skipped ones have outcome 'skipped' and status null. */
  steps: StepResult[];
  /** null when post did not run (no runs.post, or post-if false). */
  post: StepResult | null;
  outputs: Record<string, string>;
  exportedEnv: Record<string, string>;
  state: Record<string, string>;
  summary: string;
  masks: string[];
  paths: string[];
  /** Raw file-command files, keyed '<step>/<VARIABLE>' (e.g. 'main/GITHUB_OUTPUT'). */
  commandFiles: Record<string, string>;
  annotations: Annotation[];
  /** Pids of job processes still alive after post (killed by the harness afterwards). */
  orphans: number[];
  orphanDetails: OrphanProcess[];
  /** What the runner's log would show: every step's stdout and stderr with masks applied. */
  log: string;
  cancelled: boolean;
  failed: boolean;
  workspace: string;
  runnerTemp: string;
  /** The per-job marker value (GATEWAY_TEST_JOB). */
  jobId: string;
}

export type StepCondition = 'success()' | 'always()' | 'failure()' | 'cancelled()' | '!cancelled()';

export interface RunStep {
  run: string;
  env?: Record<string, string>;
  /** Like timeout-minutes: past it the step is cancelled and fails. */
  timeoutMs?: number;
  /** Time between SIGINT and SIGKILL when this step is cancelled or times out (default 10 s, like the runner: SIGINT, SIGTERM after 75% of it, SIGKILL at the end). */
  killAfterMs?: number;
  if?: StepCondition;
}

export interface RunJobOptions {
  /** Where action.yml and dist/ are (the repo root in tests). */
  actionDir: string;
  /** The `with:` of the step; becomes INPUT_<NAME>. */
  inputs: Record<string, string>;
  /** Job environment: GITHUB_*, ACTIONS_* and the like. The harness adds the runner's own. */
  env: Record<string, string>;
  /** Shell steps after the action's main step. */
  steps: (string | RunStep)[];
  /**
   * Cancels the job while steps[cancelAfterStep] runs (-1: while main runs), `cancelDelayMs`
   * after it started, or right after it ends if it ends sooner: the running step is interrupted
   * the runner's way, the remaining steps are skipped (unless `if: always()` / `cancelled()`),
   * post still runs.
   */
  cancelAfterStep?: number;
  /** Default 250 ms. */
  cancelDelayMs?: number;
  /** Kill grace for main and post when cancelled or timed out (default 10 s). */
  actionKillAfterMs?: number;
  /** Safety net for main and post (none by default). */
  actionTimeoutMs?: number;
  workspace?: string;
  /** The node binary for main and post; default process.execPath. */
  node?: string;
  /** How long a step whose process exited waits for its stdout/stderr held by others (default 5000, the runner's). */
  streamWaitMs?: number;
  /**
   * env.GITHUB_TOKEN is the `github.token` context (for input defaults); like on GitHub it is not
   * put into the steps' environment unless this is true (a workflow's `env: GITHUB_TOKEN: ...`).
   */
  exposeGithubToken?: boolean;
  /** Keep RUNNER_TEMP after the job (the runner empties it). */
  keepRunnerTemp?: boolean;
}

// What a job inherits from the machine; everything else comes from opts.env, so nothing of the
// outer process (a real GITHUB_OUTPUT, ACTIONS_ID_TOKEN_REQUEST_URL, NODE_TEST_CONTEXT...) leaks in.
const INHERITED = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'TERM'];

const FILE_COMMANDS = {
  GITHUB_OUTPUT: 'set_output',
  GITHUB_ENV: 'set_env',
  GITHUB_STATE: 'save_state',
  GITHUB_PATH: 'add_path',
  GITHUB_STEP_SUMMARY: 'step_summary',
} as const;
type FileCommand = keyof typeof FILE_COMMANDS;

const SUMMARY_LIMIT = 1024 * 1024;

/** The `github` context values the harness can put into input defaults, from the job env. */
const GITHUB_CONTEXT: Record<string, string> = {
  token: 'GITHUB_TOKEN', run_id: 'GITHUB_RUN_ID', job: 'GITHUB_JOB', run_attempt: 'GITHUB_RUN_ATTEMPT',
  run_number: 'GITHUB_RUN_NUMBER', repository: 'GITHUB_REPOSITORY', repository_owner: 'GITHUB_REPOSITORY_OWNER',
  sha: 'GITHUB_SHA', ref: 'GITHUB_REF', actor: 'GITHUB_ACTOR', event_name: 'GITHUB_EVENT_NAME',
  server_url: 'GITHUB_SERVER_URL', api_url: 'GITHUB_API_URL', workspace: 'GITHUB_WORKSPACE',
};

export function resolveDefault(input: string, value: string, env: Record<string, string>): string {
  return value.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, expr: string) => {
    const m = /^github\.([a-z_]+)$/.exec(expr);
    const variable = m ? GITHUB_CONTEXT[m[1]!] : undefined;
    if (!variable) {
      throw new Error(`action.yml: the default of input '${input}' uses \${{ ${expr} }}, which this harness cannot evaluate (supported: ${Object.keys(GITHUB_CONTEXT).map((k) => `github.${k}`).join(', ')})`);
    }
    const v = env[variable];
    if (v === undefined) throw new Error(`action.yml: the default of input '${input}' uses \${{ ${expr} }}, but env.${variable} is not given to runJob`);
    return v;
  });
}

/** INPUT_<NAME> as the runner spells it. */
export const inputVariable = (name: string): string => `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;

/**
 * Parses a GITHUB_ENV / GITHUB_OUTPUT / GITHUB_STATE file like the runner: `NAME=value` lines
 * and `NAME<<DELIMITER` heredocs. Throws with the runner's wording on malformed content.
 */
export function parseKeyValueFile(content: string): [string, string][] {
  const lines = content.split(/\r?\n/);
  const out: [string, string][] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const eq = line.indexOf('=');
    const heredoc = line.indexOf('<<');
    if (eq >= 0 && (heredoc < 0 || eq < heredoc)) {
      const key = line.slice(0, eq);
      if (key === '') throw new Error(`Invalid format '${line}'. Name must not be empty`);
      out.push([key, line.slice(eq + 1)]);
    } else if (heredoc >= 0 && (eq < 0 || heredoc < eq)) {
      const key = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      if (key === '') throw new Error(`Invalid format '${line}'. Name must not be empty`);
      if (delimiter === '') throw new Error(`Invalid format '${line}'. Delimiter must not be empty`);
      const value: string[] = [];
      let closed = false;
      for (i++; i < lines.length; i++) {
        if (lines[i] === delimiter) {
          closed = true;
          break;
        }
        value.push(lines[i]!);
      }
      if (!closed) throw new Error(`Invalid value. Matching delimiter not found '${delimiter}'`);
      out.push([key, value.join('\n')]);
    } else {
      throw new Error(`Invalid format '${line}'`);
    }
  }
  return out;
}

interface WorkflowCommand { command: string; properties: Record<string, string>; data: string }

const unescapeData = (s: string): string => s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%');
const unescapeProperty = (s: string): string => unescapeData(s).replace(/%3A/gi, ':').replace(/%2C/gi, ',');

/** `::command key=value,key=value::data`, as @actions/core writes it. */
export function parseWorkflowCommand(line: string): WorkflowCommand | null {
  const input = line.trim();
  if (!input.startsWith('::')) return null;
  const end = input.indexOf('::', 2);
  if (end < 0) return null;
  const info = input.slice(2, end);
  const space = info.indexOf(' ');
  const command = space < 0 ? info : info.slice(0, space);
  if (command === '') return null;
  const properties: Record<string, string> = {};
  if (space >= 0) {
    for (const pair of info.slice(space + 1).split(',')) {
      const eq = pair.indexOf('=');
      if (eq > 0) properties[pair.slice(0, eq).trim()] = unescapeProperty(pair.slice(eq + 1));
    }
  }
  return { command, properties, data: unescapeData(input.slice(end + 2)) };
}

// ---- processes -------------------------------------------------------------------------------

interface ProcInfo { pid: number; ppid: number; state: string }

function procTable(): ProcInfo[] {
  const out: ProcInfo[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(e), state: rest[0]!, ppid: Number(rest[1]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const kill = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
};

/** Live (non-zombie) processes whose initial environment carries one of the markers. */
function markedProcesses(markers: string[], runnerMarker: string): OrphanProcess[] {
  const out: OrphanProcess[] = [];
  for (const p of procTable()) {
    if (p.state === 'Z' || p.pid === process.pid) continue;
    let environ: string[];
    try {
      environ = fs.readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!markers.some((m) => environ.includes(m))) continue;
    let cmdline = '';
    try {
      cmdline = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    } catch {
      // gone meanwhile
    }
    out.push({ pid: p.pid, cmdline, runnerWouldKill: environ.includes(runnerMarker) });
  }
  return out;
}

interface Running {
  done: Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string; durationMs: number; interrupted: boolean; streamsHeldOpen: boolean }>;
  /** The runner's cancellation: SIGINT, SIGTERM at 75% of killAfterMs, SIGKILL at killAfterMs. */
  interrupt(killAfterMs: number): void;
  exited(): boolean;
}

/**
 * Starts a step's process the way the runner's ProcessInvoker does: stdin a pipe closed at once,
 * stdout and stderr read until the process exits; if something else (a background child) still
 * holds them then, the step waits `streamWaitMs` for them before it ends anyway.
 */
function start(command: string, args: string[], cwd: string, env: Record<string, string>, streamWaitMs: number): Running {
  const t0 = performance.now();
  const child = spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});
  child.stdin.end();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  let hasExited = false;
  let interrupted = false;
  const exit = new Promise<{ status: number | null; signal: string | null }>((resolve) => {
    child.once('error', (e) => {
      err.push(Buffer.from(`${e.message}\n`));
      hasExited = true;
      resolve({ status: null, signal: null });
    });
    child.once('exit', (status, signal) => {
      hasExited = true;
      resolve({ status, signal });
    });
  });
  let isClosed = false;
  const closed = new Promise<void>((resolve) => child.once('close', () => {
    isClosed = true;
    resolve();
  }));
  const done = (async () => {
    const { status, signal } = await exit;
    // Let the pipes drain; a background process holding them delays the step (up to 5 s on GitHub).
    await Promise.race([closed, sleep(streamWaitMs)]);
    const streamsHeldOpen = !isClosed;
    const durationMs = performance.now() - t0;
    child.stdout.destroy();
    child.stderr.destroy();
    return { status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), durationMs, interrupted, streamsHeldOpen };
  })();
  return {
    done,
    exited: () => hasExited,
    interrupt(killAfterMs) {
      if (hasExited || interrupted || child.pid === undefined) return;
      interrupted = true;
      const pid = child.pid;
      void (async () => {
        // As the runner: signals go to the step's process only, not its group or children
        // (those are left to the orphan cleanup at job end).
        kill(pid, 'SIGINT');
        await Promise.race([exit, sleep(killAfterMs * 0.75)]);
        if (hasExited) return;
        kill(pid, 'SIGTERM');
        await Promise.race([exit, sleep(killAfterMs * 0.25)]);
        if (!hasExited) kill(pid, 'SIGKILL');
      })();
    },
  };
}

// ---- the job ---------------------------------------------------------------------------------

export async function runJob(opts: RunJobOptions): Promise<JobResult> {
  const actionYml = path.join(opts.actionDir, fs.existsSync(path.join(opts.actionDir, 'action.yml')) ? 'action.yml' : 'action.yaml');
  const action = YAML.parse(fs.readFileSync(actionYml, 'utf8')) as {
    inputs?: Record<string, { default?: unknown; required?: boolean } | null>;
    runs?: { using?: string; main?: string; post?: string; pre?: string; 'post-if'?: string };
  };
  const runs = action.runs ?? {};
  if (!/^node\d+$/.test(String(runs.using))) throw new Error(`${actionYml}: runs.using is '${String(runs.using)}', not a JavaScript action`);
  if (!runs.main) throw new Error(`${actionYml}: runs.main is missing`);
  if (runs.pre) throw new Error(`${actionYml}: runs.pre is not supported by this harness`);

  const jobId = randomUUID();
  const trackingId = `github_${randomUUID()}`;
  const workspace = opts.workspace ?? fs.mkdtempSync(path.join(os.tmpdir(), 'gh-workspace-'));
  fs.mkdirSync(workspace, { recursive: true });
  const runnerTemp = fs.mkdtempSync(path.join(os.tmpdir(), 'gh-runner-temp-'));
  const fileCommandDir = path.join(runnerTemp, '_runner_file_commands');
  fs.mkdirSync(fileCommandDir, { recursive: true });
  const node = opts.node ?? process.execPath;

  const base: Record<string, string> = {};
  for (const k of INHERITED) if (process.env[k] !== undefined) base[k] = process.env[k]!;
  Object.assign(base, {
    GITHUB_ACTIONS: 'true', CI: 'true', RUNNER_OS: 'Linux', RUNNER_ARCH: os.arch() === 'arm64' ? 'ARM64' : 'X64',
    RUNNER_NAME: 'harness', RUNNER_ENVIRONMENT: 'github-hosted', RUNNER_TEMP: runnerTemp,
    RUNNER_TOOL_CACHE: path.join(runnerTemp, '_tool'), GITHUB_WORKSPACE: workspace,
  });
  Object.assign(base, opts.env);
  // GITHUB_TOKEN in opts.env is the `github.token` context; on GitHub it is not in the processes'
  // environment unless the workflow puts it there.
  const context = { ...base };
  if (!opts.exposeGithubToken) delete base.GITHUB_TOKEN;
  const markers = { RUNNER_TRACKING_ID: trackingId, GATEWAY_TEST_JOB: jobId };

  // Inputs: the step's `with:` plus the declared defaults.
  const declared = action.inputs ?? {};
  const inputs: Record<string, string> = {};
  const annotations: Annotation[] = [];
  const declaredLc = new Map(Object.keys(declared).map((k) => [k.toLowerCase(), k] as const));
  const unexpected = Object.keys(opts.inputs).filter((k) => !declaredLc.has(k.toLowerCase()));
  if (unexpected.length) {
    annotations.push({
      level: 'warning', step: 'main', properties: {},
      message: `Unexpected input(s) ${unexpected.map((k) => `'${k}'`).join(', ')}, valid inputs are [${Object.keys(declared).map((k) => `'${k}'`).join(', ')}]`,
    });
  }
  for (const [name, value] of Object.entries(opts.inputs)) inputs[inputVariable(name)] = value;
  try {
    for (const [name, spec] of Object.entries(declared)) {
      const variable = inputVariable(name);
      if (variable in inputs || spec?.default === undefined || spec.default === null) continue;
      inputs[variable] = resolveDefault(name, String(spec.default), context);
    }
  } catch (e) {
    fs.rmSync(runnerTemp, { recursive: true, force: true });
    throw e;
  }

  const exportedEnv: Record<string, string> = {};
  const outputs: Record<string, string> = {};
  const state: Record<string, string> = {};
  const masks: string[] = [];
  const paths: string[] = [];
  const commandFiles: Record<string, string> = {};
  let summary = '';
  let log = '';
  let failed = false;
  let cancelled = false;

  const envFor = (extra: Record<string, string>, files: Record<FileCommand, string>, step: string): Record<string, string> => {
    const env: Record<string, string> = { ...base, ...exportedEnv, ...extra, ...files, ...markers };
    // GITHUB_PATH additions: the latest first, ahead of the job's PATH.
    if (paths.length) env.PATH = [...[...new Set(paths)].reverse(), env.PATH ?? ''].filter(Boolean).join(path.delimiter);
    env.GITHUB_ACTION = step === 'main' || step === 'post' ? '__self' : `__run${step === 'steps[0]' ? '' : `_${Number(/\d+/.exec(step)![0]) + 1}`}`;
    return env;
  };

  const mask = (s: string): string => {
    let out = s;
    for (const m of [...masks].sort((a, b) => b.length - a.length)) if (m) out = out.split(m).join('***');
    return out;
  };

  /** Runs one step process with fresh file-command files and folds in what it wrote. */
  const runStep = async (
    name: string, kind: 'action' | 'run', command: string, args: string[], extraEnv: Record<string, string>,
    limits: { timeoutMs?: number; killAfterMs: number; cancelWhileRunning: boolean },
  ): Promise<StepResult> => {
    const files = {} as Record<FileCommand, string>;
    for (const [variable, prefix] of Object.entries(FILE_COMMANDS) as [FileCommand, string][]) {
      files[variable] = path.join(fileCommandDir, `${prefix}_${randomUUID()}`);
      fs.writeFileSync(files[variable], '');
    }
    const proc = start(command, args, workspace, envFor(extraEnv, files, name), opts.streamWaitMs ?? 5000);
    let timedOut = false;
    const timers: NodeJS.Timeout[] = [];
    if (limits.timeoutMs !== undefined) {
      timers.push(setTimeout(() => {
        if (!proc.exited()) {
          timedOut = true;
          proc.interrupt(limits.killAfterMs);
        }
      }, limits.timeoutMs));
    }
    if (limits.cancelWhileRunning) {
      timers.push(setTimeout(() => {
        cancelled = true;
        proc.interrupt(limits.killAfterMs);
      }, opts.cancelDelayMs ?? 250));
    }
    const r = await proc.done;
    for (const t of timers) clearTimeout(t);
    if (limits.cancelWhileRunning) cancelled = true;

    const stepOutputs: Record<string, string> = {};
    let fileCommandFailed = false;
    const annotate = (level: Annotation['level'], message: string, properties: Record<string, string> = {}): void => {
      annotations.push({ level, message, step: name, properties });
    };

    // Workflow commands, stdout then stderr (the runner reads both).
    let stopToken: string | null = null;
    for (const line of `${r.stdout}\n${r.stderr}`.split(/\r?\n/)) {
      const cmd = parseWorkflowCommand(line);
      if (!cmd) continue;
      if (stopToken !== null) {
        if (cmd.command === stopToken) stopToken = null;
        continue;
      }
      switch (cmd.command) {
        case 'add-mask':
          if (cmd.data.trim() !== '') masks.push(cmd.data);
          break;
        case 'error': case 'warning': case 'notice':
          annotate(cmd.command, cmd.data, cmd.properties);
          break;
        case 'set-output':
          annotate('warning', 'The `set-output` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/');
          if (cmd.properties.name) stepOutputs[cmd.properties.name] = cmd.data;
          break;
        case 'save-state':
          annotate('warning', 'The `save-state` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/');
          if (cmd.properties.name && name === 'main') state[cmd.properties.name] = cmd.data;
          break;
        case 'set-env': case 'add-path':
          fileCommandFailed = true;
          annotate('error', `The \`${cmd.command}\` command is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the \`ACTIONS_ALLOW_UNSECURE_COMMANDS\` environment variable to \`true\`. For more information see: https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/`);
          break;
        case 'stop-commands':
          if (cmd.data) stopToken = cmd.data;
          break;
        default:
          break; // debug, group, endgroup, echo...: display only
      }
    }

    // File commands.
    for (const variable of Object.keys(FILE_COMMANDS) as FileCommand[]) {
      let content = '';
      try {
        content = fs.readFileSync(files[variable], 'utf8');
      } catch {
        // deleted by the step
      }
      commandFiles[`${name}/${variable}`] = content;
      if (content === '') continue;
      try {
        if (variable === 'GITHUB_STEP_SUMMARY') {
          if (Buffer.byteLength(content) > SUMMARY_LIMIT) {
            annotate('warning', `$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of 1024k, got ${Math.ceil(Buffer.byteLength(content) / 1024)}k. For more information see: https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions#adding-a-markdown-summary`);
          } else {
            summary += content;
          }
        } else if (variable === 'GITHUB_PATH') {
          for (const p of content.split(/\r?\n/)) if (p !== '') paths.push(p);
        } else {
          for (const [key, value] of parseKeyValueFile(content)) {
            if (variable === 'GITHUB_ENV') {
              if (key.toUpperCase() === 'NODE_OPTIONS') throw new Error("Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command.");
              exportedEnv[key] = value;
            } else if (variable === 'GITHUB_OUTPUT') {
              stepOutputs[key] = value;
            } else if (name === 'main') {
              state[key] = value;
            }
          }
        }
      } catch (e) {
        fileCommandFailed = true;
        const which = { GITHUB_ENV: 'env', GITHUB_OUTPUT: 'output', GITHUB_STATE: 'save_state', GITHUB_PATH: 'path', GITHUB_STEP_SUMMARY: 'summary' }[variable];
        annotate('error', `Unable to process file command '${which}' successfully.`);
        annotate('error', (e as Error).message);
      }
    }
    // The runner keeps a post step's outputs nowhere (actions/runner: a post child has no context
    // name, and SetOutput drops outputs without one); they stay in that step's own result.
    if (name === 'main') Object.assign(outputs, stepOutputs);

    let outcome: Outcome = r.status === 0 && !fileCommandFailed ? 'success' : 'failure';
    if (timedOut) {
      outcome = 'failure';
      annotate('error', `The step has timed out after ${limits.timeoutMs} ms.`);
    } else if (r.interrupted) outcome = 'cancelled';
    else if (kind === 'run' && r.status !== 0) annotate('error', r.status === null ? `Process terminated by ${r.signal}.` : `Process completed with exit code ${r.status}.`);
    if (outcome === 'failure') failed = true;
    log += `##[step] ${name}\n${mask(r.stdout)}${mask(r.stderr)}`;
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, durationMs: r.durationMs, name, outcome, outputs: stepOutputs, streamsHeldOpen: r.streamsHeldOpen };
  };

  const shouldRun = (condition: string): boolean => {
    switch (condition.replace(/^\$\{\{\s*(.*?)\s*\}\}$/, '$1').trim()) {
      case 'success()': return !failed && !cancelled;
      case 'always()': return true;
      case 'failure()': return failed && !cancelled;
      case 'cancelled()': return cancelled;
      case '!cancelled()': return !cancelled;
      default: throw new Error(`unsupported step condition '${condition}' (success(), always(), failure(), cancelled(), !cancelled())`);
    }
  };
  const skipped = (name: string): StepResult => ({ status: null, signal: null, stdout: '', stderr: '', durationMs: 0, name, outcome: 'skipped', outputs: {}, streamsHeldOpen: false });
  const actionKill = opts.actionKillAfterMs ?? 10_000;
  const actionLimits = (cancelWhileRunning: boolean) => ({
    killAfterMs: actionKill, cancelWhileRunning, ...(opts.actionTimeoutMs !== undefined ? { timeoutMs: opts.actionTimeoutMs } : {}),
  });

  // Conditions are checked before anything runs, so a typo cannot leave a half-run job behind.
  for (const raw of opts.steps) if (typeof raw !== 'string' && raw.if) shouldRun(raw.if);
  if (runs['post-if']) shouldRun(runs['post-if']);

  const main = await runStep('main', 'action', node, [path.resolve(opts.actionDir, runs.main)], inputs, actionLimits(opts.cancelAfterStep === -1));

  const steps: StepResult[] = [];
  for (const [i, raw] of opts.steps.entries()) {
    const step: RunStep = typeof raw === 'string' ? { run: raw } : raw;
    const name = `steps[${i}]`;
    if (!shouldRun(step.if ?? 'success()')) {
      steps.push(skipped(name));
      continue;
    }
    const script = path.join(runnerTemp, `${randomUUID()}.sh`);
    fs.writeFileSync(script, step.run);
    steps.push(await runStep(name, 'run', 'bash', ['-e', script], step.env ?? {}, {
      killAfterMs: step.killAfterMs ?? 10_000, cancelWhileRunning: opts.cancelAfterStep === i,
      ...(step.timeoutMs !== undefined ? { timeoutMs: step.timeoutMs } : {}),
    }));
  }

  let post: StepResult | null = null;
  if (runs.post && shouldRun(runs['post-if'] ?? 'always()')) {
    const stateEnv: Record<string, string> = { ...inputs };
    for (const [k, v] of Object.entries(state)) stateEnv[`STATE_${k}`] = v;
    post = await runStep('post', 'action', node, [path.resolve(opts.actionDir, runs.post)], stateEnv, actionLimits(false));
  }

  // Job end: whatever the job started and is still running is an orphan; the runner kills it.
  await sleep(50);
  const orphanDetails = markedProcesses([`GATEWAY_TEST_JOB=${jobId}`, `RUNNER_TRACKING_ID=${trackingId}`], `RUNNER_TRACKING_ID=${trackingId}`);
  for (const o of orphanDetails) kill(o.pid, 'SIGKILL');
  const deadline = Date.now() + 3000;
  while (orphanDetails.some((o) => alive(o.pid)) && Date.now() < deadline) await sleep(20);
  if (orphanDetails.length) {
    annotations.push({ level: 'notice', step: 'runner', properties: {}, message: `Cleaning up orphan processes: ${orphanDetails.map((o) => `${o.pid} (${o.cmdline})`).join(', ')}` });
  }
  if (!opts.keepRunnerTemp) fs.rmSync(runnerTemp, { recursive: true, force: true });

  return {
    main, steps, post, outputs, exportedEnv, state, summary, masks, paths, commandFiles, annotations,
    orphans: orphanDetails.map((o) => o.pid), orphanDetails, log, cancelled, failed, workspace, runnerTemp, jobId,
  };
}
