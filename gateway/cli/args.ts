// The verbs' arguments, read by node:util's parseArgs: `--name VALUE`, `--name=VALUE`, short
// aliases (`-o FILE`), boolean flags, `-h`/`--help` everywhere, and everything after `--` kept
// verbatim (the command of `run`, an operand that starts with "-"). parseArgs runs non-strict so
// every mistake is reported here in the CLI's own words, naming the option and the verb's help.
import { parseArgs as parseArgv } from 'node:util';

export class UsageError extends Error {}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** An option's value as its spec types it: the last one given wins; absent ones are undefined. */
export type OptionValues<S extends OptionSpec> = { [K in keyof S]?: S[K]['type'] extends 'string' ? string : boolean } & { help?: boolean };

export interface ParsedArgs<S extends OptionSpec = OptionSpec> {
  values: OptionValues<S>;
  /** Operands before `--`. */
  positional: string[];
  /** Everything after the first `--` (null when there is none). */
  rest: string[] | null;
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

export function parseArgs<S extends OptionSpec>(argv: string[], spec: S, verb: string): ParsedArgs<S> {
  const options = { ...spec, ...HELP };
  const { tokens } = parseArgv({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const values: Record<string, string | boolean> = {};
  const positional: string[] = [];
  let rest: string[] | null = null;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') {
      rest = argv.slice(token.index + 1);
      break;
    }
    if (token.kind === 'positional') {
      positional.push(token.value);
      continue;
    }
    const kind = Object.hasOwn(options, token.name) ? options[token.name]!.type : undefined;
    // The name as typed: `-o`, `--polcy` (of `--polcy=x.yml` too).
    const shown = token.rawName;
    if (!kind) throw new UsageError(`${verb}: unknown option ${shown} (see gateway-action ${verb} --help)`);
    if (kind === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`${verb}: ${shown} takes no value`);
      values[token.name] = true;
      continue;
    }
    // `-o=FILE` means FILE, as it did before parseArgs (which would read "=FILE").
    const value = token.inlineValue && !token.rawName.startsWith('--') && token.value?.startsWith('=') ? token.value.slice(1) : token.value;
    if (value === undefined || value === '') throw new UsageError(`${verb}: ${shown} needs a value`);
    // `--policy --log-dir DIR` forgot the policy: the next option is not taken for its value.
    if (!token.inlineValue && value.startsWith('-')) throw new UsageError(`${verb}: ${shown} needs a value, not ${value} (write ${shown}=VALUE for a value that starts with "-")`);
    values[token.name] = value;
  }
  return { values: values as OptionValues<S>, positional, rest };
}

/** The operands wherever they stand: before `--` and after it (for a file named "-x.jsonl"). */
export function operands(args: ParsedArgs): string[] {
  return [...args.positional, ...(args.rest ?? [])];
}

export function requireOption(args: ParsedArgs, name: string, verb: string): string {
  const v = (args.values as Record<string, unknown>)[name];
  if (typeof v !== 'string') throw new UsageError(`${verb}: --${name} is required (see gateway-action ${verb} --help)`);
  return v;
}
