// Reads test/corpus/startup-options.txt: options strings and what they set (see its header).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions } from '../../gateway/postgres/startup-settings.ts';

const CORPUS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../corpus/startup-options.txt');

export interface OptionsCase { line: number; options: string; expect: string; server: boolean }

export function readOptionsCorpus(): OptionsCase[] {
  const out: OptionsCase[] = [];
  fs.readFileSync(CORPUS, 'utf8').split('\n').forEach((text, i) => {
    if (!text.trim() || text.startsWith('#')) return;
    const m = /^(server )?("(?:[^"\\]|\\.)*") => (.*)$/.exec(text);
    if (!m) throw new Error(`startup-options.txt:${i + 1}: cannot read ${JSON.stringify(text)}`);
    out.push({ line: i + 1, options: JSON.parse(m[2]!) as string, expect: m[3]!, server: Boolean(m[1]) });
  });
  return out;
}

/** What the corpus writes for the gateway's reading: "a=b; c=d", "nothing" or "refused: reason". */
export function describeReading(options: string): string {
  const r = parseOptions(options);
  if (r.refusal) return `refused: ${r.refusal}`;
  const sets = r.switches.flatMap((s) => s.sets.map(([k, v]) => `${k}=${v}`));
  return sets.length ? sets.join('; ') : 'nothing';
}
