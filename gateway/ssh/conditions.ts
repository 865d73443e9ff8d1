// The `when:` keys an SSH unit can be matched on, registered with the policy loader through the
// adapter: `ssh` (the unit's class), `command` (globs over the words), `program` (the command
// name's basename), `option` (flags) and `path` (path globs). Each reads one SshUnit. A fact
// that holds a wildcard (an expansion, a glob the shell expands) matches a rule when some string
// it may stand for does: `cat /etc/sha*` meets `/etc/shadow`, `rm $FLAGS` any option.
import type { ConditionSpec } from '../core/adapter.ts';
import type { Facts } from '../policy/engine.ts';
import { anyGlob, nameGlob, pathGlob } from '../policy/glob.ts';
import { SSH_CLASSES, type SshUnit } from './exec-facts.ts';
import { overlapMatcher } from './shell-glob-overlap.ts';
import { ANY_OPTION } from './shell-options.ts';
import { isPlainPattern } from './shell-words.ts';

const unit = (f: Facts): SshUnit => f as SshUnit;
const CLASS_SET = new Set<string>(SSH_CLASSES);

const stringList = (description: string): object => ({ description, type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } });

export const sshCondition: ConditionSpec = {
  key: 'ssh',
  schema: { description: `SSH classes (${SSH_CLASSES.join(', ')}); any of them.`, type: 'array', minItems: 1, items: { type: 'string' } },
  compile(raw, fail) {
    const classes = raw as string[];
    classes.forEach((c, k) => {
      if (!CLASS_SET.has(c)) fail(`unknown SSH class "${c}" (classes: ${SSH_CLASSES.join(', ')})`, [k]);
    });
    return (f) => classes.includes(unit(f).ssh);
  },
};

export const commandCondition: ConditionSpec = {
  key: 'command',
  schema: stringList("Globs over a simple command's words joined by single spaces (`systemctl restart *`); `*` is any run of characters; any of them."),
  compile(raw, fail) {
    const matchers = (raw as string[]).flatMap((g, k) => {
      if (g.trim() !== g || g.includes('  ')) fail(`bad command glob "${g}": words are joined by single spaces, with none around them`, [k]);
      return wordStarVariants(g, () => fail(`bad command glob "${g}": more than ${MAX_WORD_STARS} words that are only *`, [k])).map((v) => {
        const plain = nameGlob(v);
        const overlap = overlapMatcher(v, 'name', 'command');
        return (command: string): boolean => (isPlainPattern(command) ? plain(command) : overlap(command));
      });
    });
    return (f) => {
      const c = unit(f).command;
      return c !== undefined && matchers.some((m) => m(c));
    };
  },
};

const MAX_WORD_STARS = 6;

/**
 * A `*` standing alone as a word also stands for no word at all: `dd * of=/dev/*` holds
 * `dd of=/dev/sda`, `systemctl restart *` holds `systemctl restart`. The glob, once with each
 * such word and once without it.
 */
function wordStarVariants(glob: string, tooMany: () => never): string[] {
  const words = glob.split(' ');
  const stars = words.flatMap((w, i) => (w === '*' ? [i] : []));
  if (stars.length > MAX_WORD_STARS) tooMany();
  const out = new Set<string>();
  for (let mask = 0; mask < 1 << stars.length; mask++) {
    const dropped = new Set(stars.filter((_, b) => mask & (1 << b)));
    const kept = words.filter((_, i) => !dropped.has(i));
    if (kept.length) out.add(kept.join(' '));
  }
  return [...out];
}

export const programCondition: ConditionSpec = {
  key: 'program',
  schema: stringList('Command names (the basename: `/bin/rm` is `rm`), `*` a wildcard; any of them.'),
  compile(raw, fail) {
    const globs = (raw as string[]).map((g, k) => {
      if (g.includes('/') || g.includes(' ')) fail(`bad program "${g}": a program is a command's basename (no / or space)`, [k]);
      return nameGlob(g);
    });
    return (f) => {
      const p = unit(f).program;
      return p !== undefined && anyGlob(globs, p);
    };
  },
};

export const optionCondition: ConditionSpec = {
  key: 'option',
  schema: stringList('Flags (`-r`, `--recursive`); short clusters are expanded (`-rf` holds -r), long options match with or without `=value` and when abbreviated; any of them.'),
  compile(raw, fail) {
    const flags = (raw as string[]).map((o, k) => {
      if (o.length < 2 || o[0] !== '-' || o === '--' || o.includes('=') || o.includes(' ') || o.includes('*')) fail(`bad option "${o}": an option is a flag such as -r or --recursive (no value, no wildcard)`, [k]);
      return o;
    });
    return (f) => {
      const options = unit(f).options;
      if (!options) return false;
      for (const fact of options) {
        if (fact === ANY_OPTION) return true;
        for (const flag of flags) {
          if (fact === flag) return true;
          // GNU programs take any unambiguous abbreviation of a long option (`--recur`).
          if (flag.startsWith('--') && fact.startsWith('--') && fact.length > 2 && flag.startsWith(fact)) return true;
        }
      }
      return false;
    };
  },
};

export const pathCondition: ConditionSpec = {
  key: 'path',
  schema: stringList('Absolute path globs (`/etc/shadow`, `/home/*/.ssh/**`): `*` and `?` within a segment, `**` across segments; any of them.'),
  compile(raw, fail) {
    const matchers = (raw as string[]).map((g, k) => {
      if (!g.startsWith('/') && !g.startsWith('**')) fail(`bad path glob "${g}": paths are absolute (start with / or **)`, [k]);
      const plain = pathGlob(g);
      const overlap = overlapMatcher(g, 'path', 'path');
      return (path: string): boolean => (isPlainPattern(path) ? plain(path) : overlap(path));
    });
    return (f) => {
      const paths = unit(f).paths;
      return paths !== undefined && paths.some((p) => matchers.some((m) => m(p)));
    };
  },
};

export const SSH_CONDITIONS: readonly ConditionSpec[] = [sshCondition, commandCondition, programCondition, optionCondition, pathCondition];
