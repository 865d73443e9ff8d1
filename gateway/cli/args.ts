// Minimal argument parsing for the CLI verbs: --name VALUE, --name=VALUE, boolean flags, and
// everything after `--` kept verbatim for `run`.

export class UsageError extends Error {}

export interface ParsedArgs {
  options: Record<string, string | boolean>;
  positional: string[];
  rest: string[] | null;
}

export function parseArgs(argv: string[], spec: Record<string, 'string' | 'boolean'>, verb: string): ParsedArgs {
  const options: Record<string, string | boolean> = {};
  const positional: string[] = [];
  let rest: string[] | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest = argv.slice(i + 1);
      break;
    }
    if (a === '-h' || a === '--help') {
      options.help = true;
      continue;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      const kind = spec[name];
      if (!kind) throw new UsageError(`${verb}: unknown option --${name} (see gateway-action ${verb} --help)`);
      if (kind === 'boolean') {
        if (eq > 0) throw new UsageError(`${verb}: --${name} takes no value`);
        options[name] = true;
      } else {
        const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
        if (value === undefined || value === '') throw new UsageError(`${verb}: --${name} needs a value`);
        options[name] = value;
      }
      continue;
    }
    positional.push(a);
  }
  return { options, positional, rest };
}

export function requireOption(args: ParsedArgs, name: string, verb: string): string {
  const v = args.options[name];
  if (typeof v !== 'string') throw new UsageError(`${verb}: --${name} is required (see gateway-action ${verb} --help)`);
  return v;
}
