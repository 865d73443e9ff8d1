// Startup parameters as the server variables they set, read exactly as PostgreSQL reads them, so
// policy can decide them as the SET statements they amount to.
//
// The server (PostgreSQL 15; later versions take the same switches, older ones also `-o`, which is
// refused here) takes every startup parameter but `user`, `database`, `options`, `replication`
// and `_pq_.*` as a setting
// (postmaster.c ProcessStartupPacket), and splits `options` into words (postinit.c
// pg_split_opts: ASCII whitespace separates, a backslash takes the next character literally)
// that it reads as command-line switches (postgres.c process_postgres_switches, getopt with
// "B:bc:C:D:d:EeFf:h:ijk:lN:nOPp:r:S:sTt:v:W:-:"): clusters such as `-nc`, an argument glued
// (`-crole=x`) or in the next word (`-c role=x`), `--name=value`, and single letters that set
// settings of their own (`-S 1GB` is work_mem). Anything this reading does not cover is refused,
// never passed as something harmless.

/** Startup parameters the server reads as something other than a setting. */
const NOT_SETTINGS = new Set(['user', 'database', 'options', 'replication']);

/**
 * Settings drivers send by themselves that only shape the client's own view of the session; as
 * top-level startup parameters they are not decided by rules (in `options` they are).
 */
const PLAIN_STARTUP_SETTINGS = new Set(['application_name', 'client_encoding', 'datestyle', 'timezone', 'extra_float_digits', 'intervalstyle', 'fallback_application_name']);

export interface StartupSetting {
  /** The setting's name as the server looks it up (lower case; `-` in `--name` read as `_`). */
  name: string;
  value: string;
  /** Where it came from: `parameter`, or the switch in `options` (`-c`, `-S`, `-d`, ...). */
  from: string;
}

export interface OptionSwitch {
  /** The switch letter with its dash: `-c`, `--` (for `--name=value`), `-n`. */
  switch: string;
  argument?: string;
  /** What the switch sets; empty for switches the server ignores from clients. */
  sets: [string, string][];
}

export interface StartupReading {
  /** Every setting, in the order the server applies them (options first, then parameters). */
  settings: StartupSetting[];
  /** The settings rules decide (all but the plain top-level ones). */
  decided: StartupSetting[];
  /** `options` as the server reads it, switch by switch; null when the client sent none. */
  options: OptionSwitch[] | null;
  /** Why the gateway cannot read the startup parameters as settings, or null. */
  refusal: string | null;
}

/** C isspace() of the ASCII characters (the only ones `options` may hold here). */
const isCSpace = (c: string): boolean => c === ' ' || (c >= '\t' && c <= '\r');

/**
 * `options` split into words exactly as pg_split_opts does: whitespace separates words, a
 * backslash makes the next character part of the word, a trailing backslash is dropped.
 */
export function splitOptions(raw: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < raw.length) {
    while (i < raw.length && isCSpace(raw[i]!)) i++;
    if (i >= raw.length) break;
    let word = '';
    let escaped = false;
    for (; i < raw.length; i++) {
      const c = raw[i]!;
      if (isCSpace(c) && !escaped) break;
      if (!escaped && c === '\\') escaped = true;
      else {
        escaped = false;
        word += c;
      }
    }
    words.push(word);
  }
  return words;
}

type SwitchEffect = (arg: string) => [string, string][] | string;

const ignored: SwitchEffect = () => [];
const sets = (name: string, value?: string): SwitchEffect => (arg) => [[name, value ?? arg]];

/** -f: disables one plan type, chosen by the argument's first letter (set_plan_disabling_options). */
const PLAN_TYPES: Record<string, string> = { s: 'enable_seqscan', i: 'enable_indexscan', o: 'enable_indexonlyscan', b: 'enable_bitmapscan', t: 'enable_tidscan', n: 'enable_nestloop', m: 'enable_mergejoin', h: 'enable_hashjoin' };

/** C atoi() for the digits -d takes; null where its result would be undefined behaviour. */
function atoi(s: string): number | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d*)/.exec(s)!;
  const digits = m[2]!.replace(/^0+(?=\d)/, '');
  if (digits.length > 9) return null;
  const n = Number(digits || '0');
  return m[1] === '-' ? -n : n;
}

/** -d N: set_debug_options for a client (log_connections/log_disconnections are postmaster-only). */
function debugOptions(arg: string): [string, string][] | string {
  const level = atoi(arg);
  if (level === null) return `the debug level "${arg}" is out of range`;
  const out: [string, string][] = [['log_min_messages', level > 0 ? `debug${level}` : 'notice']];
  if (level >= 2) out.push(['log_statement', 'all']);
  if (level >= 3) out.push(['debug_print_parse', 'true']);
  if (level >= 4) out.push(['debug_print_plan', 'true']);
  if (level >= 5) out.push(['debug_print_rewritten', 'true']);
  return out;
}

/** -c name=value and --name=value (ParseLongOption: the name up to the first `=`, `-` read as `_`). */
function longOption(flag: string): SwitchEffect {
  return (arg) => {
    const eq = arg.indexOf('=');
    if (eq < 0) return `${flag === '-' ? `--${arg}` : `-c ${arg}`} requires a value`;
    const name = arg.slice(0, eq).replaceAll('-', '_');
    if (name === '') return `"${arg}" names no setting`;
    if (!SETTING_NAME.test(name)) return `${JSON.stringify(name)} is not a setting name`;
    return [[asciiLower(name), arg.slice(eq + 1)]];
  };
}

/**
 * Every switch of process_postgres_switches, with whether it takes an argument and what it sets
 * for a client. Switches the server honours only from its own command line (-b -D -E -j -r -v)
 * and those it always ignores (-C -n -T) set nothing; their arguments are still consumed.
 */
const SWITCHES: Record<string, { takesArg: boolean; effect: SwitchEffect }> = {
  B: { takesArg: true, effect: sets('shared_buffers') },
  b: { takesArg: false, effect: ignored },
  c: { takesArg: true, effect: longOption('c') },
  C: { takesArg: true, effect: ignored },
  D: { takesArg: true, effect: ignored },
  d: { takesArg: true, effect: debugOptions },
  E: { takesArg: false, effect: ignored },
  e: { takesArg: false, effect: sets('datestyle', 'euro') },
  F: { takesArg: false, effect: sets('fsync', 'false') },
  f: { takesArg: true, effect: (arg) => (PLAN_TYPES[arg[0] ?? ''] ? [[PLAN_TYPES[arg[0]!]!, 'false']] : `-f ${arg} names no plan type`) },
  h: { takesArg: true, effect: sets('listen_addresses') },
  i: { takesArg: false, effect: sets('listen_addresses', '*') },
  j: { takesArg: false, effect: ignored },
  k: { takesArg: true, effect: sets('unix_socket_directories') },
  l: { takesArg: false, effect: sets('ssl', 'true') },
  N: { takesArg: true, effect: sets('max_connections') },
  n: { takesArg: false, effect: ignored },
  O: { takesArg: false, effect: sets('allow_system_table_mods', 'true') },
  P: { takesArg: false, effect: sets('ignore_system_indexes', 'true') },
  p: { takesArg: true, effect: sets('port') },
  r: { takesArg: true, effect: ignored },
  S: { takesArg: true, effect: sets('work_mem') },
  s: { takesArg: false, effect: sets('log_statement_stats', 'true') },
  T: { takesArg: false, effect: ignored },
  t: {
    takesArg: true,
    // get_stats_option_name: "pa..." parser, "pl..." planner, "e..." executor.
    effect: (arg) => {
      const name = arg[0] === 'p' ? (arg[1] === 'a' ? 'log_parser_stats' : arg[1] === 'l' ? 'log_planner_stats' : null) : arg[0] === 'e' ? 'log_executor_stats' : null;
      return name ? [[name, 'true']] : `-t ${arg} names no statistics`;
    },
  },
  v: { takesArg: true, effect: ignored },
  W: { takesArg: true, effect: sets('post_auth_delay') },
  '-': { takesArg: true, effect: longOption('-') },
};

/**
 * What a setting's name can be: built-in names are letters, digits and `_`; extension settings
 * add `.` (and `$`). Anything else the server rejects as unknown, and it could not be decided as
 * the SET of a known setting, so it is refused.
 */
const SETTING_NAME = /^[A-Za-z0-9_$.]+$/;

/** GUC names compare case-insensitively in ASCII only (guc_name_compare). */
const asciiLower = (s: string): string => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

/**
 * `options` read as process_postgres_switches reads it from a client: the switches with what each
 * sets, or the reason the gateway refuses it. Every form the server would reject (an unknown
 * letter, a missing argument, a word that is not a switch) is refused too, as is any character
 * outside printable ASCII and its whitespace, whose splitting would depend on the server's locale.
 */
export function parseOptions(raw: string): { switches: OptionSwitch[]; refusal: string | null } {
  const switches: OptionSwitch[] = [];
  const refuse = (why: string): { switches: OptionSwitch[]; refusal: string } => ({ switches, refusal: why });
  // eslint-disable-next-line no-control-regex
  const odd = /[^\x20-\x7e\t\n\v\f\r]/.exec(raw);
  if (odd) return refuse(`it holds the character U+${odd[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}, and only printable ASCII is read the same way by every server locale`);
  const words = splitOptions(raw);
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') {
      // getopt's end of switches: any word after it is an argument the server rejects.
      if (i + 1 < words.length) return refuse(`"${words[i + 1]}" after "--" is not a switch`);
      break;
    }
    if (word.length < 2 || word[0] !== '-') return refuse(`"${word}" is not a switch (switches start with "-")`);
    for (let j = 1; j < word.length; j++) {
      const letter = word[j]!;
      const spec = SWITCHES[letter];
      const name = letter === '-' ? '--' : `-${letter}`;
      if (!spec) return refuse(`${name} (in "${word}") is not a switch the server accepts`);
      if (!spec.takesArg) {
        switches.push({ switch: name, sets: spec.effect('') as [string, string][] });
        continue;
      }
      // The rest of the cluster is the argument, else the next word, whatever it looks like.
      let arg: string;
      if (j + 1 < word.length) arg = word.slice(j + 1);
      else if (i + 1 < words.length) arg = words[++i]!;
      else return refuse(`${name} (in "${word}") needs an argument`);
      const effect = spec.effect(arg);
      if (typeof effect === 'string') return refuse(effect);
      switches.push({ switch: name, argument: arg, sets: effect });
      break;
    }
  }
  return { switches, refusal: null };
}

/** The startup parameters as the settings they make (see the top of this file). */
export function readStartupParameters(params: Map<string, string>): StartupReading {
  const settings: StartupSetting[] = [];
  const decided: StartupSetting[] = [];
  let options: OptionSwitch[] | null = null;
  let refusal: string | null = null;
  const raw = params.get('options');
  if (raw !== undefined) {
    const parsed = parseOptions(raw);
    options = parsed.switches;
    if (parsed.refusal) refusal ??= `options ${JSON.stringify(raw)} (PGOPTIONS) cannot be read as settings: ${parsed.refusal}`;
    for (const s of parsed.switches) {
      for (const [name, value] of s.sets) {
        const setting = { name, value, from: s.switch };
        settings.push(setting);
        decided.push(setting);
      }
    }
  }
  for (const [k, v] of params) {
    if (NOT_SETTINGS.has(k) || k.startsWith('_pq_.')) continue;
    if (!SETTING_NAME.test(k)) refusal ??= `the startup parameter ${JSON.stringify(k)} is not a setting name`;
    const setting = { name: asciiLower(k), value: v, from: 'parameter' };
    settings.push(setting);
    if (!PLAIN_STARTUP_SETTINGS.has(setting.name)) decided.push(setting);
  }
  return { settings, decided, options, refusal };
}

/** The SET statements the settings amount to, for the policy to decide. */
export function asSetStatements(settings: StartupSetting[]): string {
  return settings.map((s) => `SET ${quoteIdent(s.name)} TO ${quoteLiteral(s.value)}`).join('; ');
}

export const quoteIdent = (s: string): string => `"${s.replaceAll('"', '""')}"`;
export const quoteLiteral = (s: string): string => `'${s.replaceAll("'", "''")}'`;
