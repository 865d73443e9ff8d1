// What a played recording may send to the auditor's terminal. A recording is what a shell on a
// server printed, so it is attacker-influenced: besides text, colors and cursor movement (which
// playback needs), a terminal obeys sequences that write the clipboard (OSC 52), retitle the
// window, make the terminal type answers into the auditor's shell (DSR, DA, window reports),
// switch modes that outlive the playback (mouse tracking, keypad, bracketed paste), reset or
// fill the screen, or hide text (SGR 8). This filter passes an allowlist and drops the rest,
// counting what it dropped. It reads sequences as a DEC VT parser does (vt100.net/emu/dec_ansi_parser):
// C0 controls act inside a sequence, CAN and SUB abort one, ESC starts a new one anywhere (which
// also ends a string), so it never swallows text the terminal would have shown. It is stateful:
// a sequence cut between two events or chunks is held until it completes.

/** C0 controls passed through: BEL, BS, HT, LF, VT, FF, CR. */
const ALLOWED_C0 = new Set([0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);
/** CSI finals passed with plain numeric parameters: cursor movement, erase, insert/delete, scroll, margins. */
const CSI_MOVE_EDIT = new Set('@ABCDEFGHIJKLMPSTXZ`abdefrsu'.split(''));
/** Private modes (`CSI ? N h/l`) passed: cursor visible, autowrap. The end of playback restores both. */
const PRIVATE_MODES = new Set(['25', '7']);
/** ANSI modes (`CSI N h/l`) passed: insert mode. Restored at the end too. */
const ANSI_MODES = new Set(['4']);
/** Single-character escapes passed: save/restore cursor, index, next line, reverse index. */
const ESC_ALLOWED = new Set(['7', '8', 'D', 'E', 'M']);
/** Charset designations passed (`ESC ( B` ASCII, `ESC ( 0` line drawing, as ncurses draws boxes). */
const CHARSETS = new Set(['(B', '(0']);
/** A longer CSI is no terminal's: dropped whole. */
const MAX_CSI = 256;

const CAN = 0x18;
const SUB = 0x1a;
const ESC = 0x1b;
const ST_C1 = 0x9c;

/**
 * Puts the auditor's terminal back after playback whatever the recording left on: attributes,
 * charset, cursor shown, autowrap, replace mode, full-screen scroll margins (inside a cursor
 * save/restore, as resetting the margins homes the cursor).
 */
export const TERMINAL_RESTORE = '\x1b[0m\x1b(B\x1b[?25h\x1b[?7h\x1b[4l\x1b7\x1b[r\x1b8';

const OSC_NAMES: Record<string, string> = {
  '0': 'window title (OSC 0)', '1': 'icon title (OSC 1)', '2': 'window title (OSC 2)', '8': 'hyperlink (OSC 8)', '52': 'clipboard write (OSC 52)',
  '4': 'palette change (OSC 4)', '10': 'color change (OSC 10)', '11': 'color change (OSC 11)', '12': 'color change (OSC 12)', '104': 'palette reset (OSC 104)',
};
const STRING_NAMES: Record<string, string> = { P: 'device control string (DCS)', X: 'start of string (SOS)', '^': 'privacy message (PM)', _: 'application program command (APC)' };

type State =
  | { s: 'ground' }
  | { s: 'esc'; seq: string }
  | { s: 'csi'; seq: string }
  | { s: 'csi-ignore' }
  | { s: 'string'; name: string; osc: string | null; esc: boolean };

export class TerminalSanitizer {
  /** What was dropped, by kind, in the order first seen. */
  readonly neutralised = new Map<string, number>();
  private state: State = { s: 'ground' };

  /** The part of `text` that may reach a terminal; a sequence still open is held for the next call. */
  write(text: string): string {
    let out = '';
    let i = 0;
    while (i < text.length) {
      if (this.state.s === 'ground') {
        const j = nextControl(text, i);
        out += text.slice(i, j);
        if (j === text.length) break;
        i = j;
      }
      out += this.step(text.charCodeAt(i), text[i]!);
      i++;
    }
    return out;
  }

  /** Ends the stream: a sequence left open (a recording cut short) is dropped and counted. */
  end(): string {
    if (this.state.s === 'string') this.finishString(this.state);
    else if (this.state.s !== 'ground') this.count('unfinished escape sequence');
    this.state = { s: 'ground' };
    return '';
  }

  private count(kind: string): void {
    this.neutralised.set(kind, (this.neutralised.get(kind) ?? 0) + 1);
  }

  /** One character outside plain text: returns what it lets through. */
  private step(code: number, ch: string): string {
    const st = this.state;
    // ESC starts a new sequence from anywhere (ending a string or an unfinished sequence); in a
    // string it may be the first half of ST (ESC \).
    if (code === ESC) {
      if (st.s === 'string') {
        st.esc = true;
        return '';
      }
      if (st.s !== 'ground') this.count('unfinished escape sequence');
      this.state = { s: 'esc', seq: '' };
      return '';
    }
    if (st.s === 'string') return this.inString(st, code, ch);
    if (code === CAN || code === SUB) {
      if (st.s !== 'ground') this.count('cancelled escape sequence');
      this.state = { s: 'ground' };
      return '';
    }
    // Other C0 controls act where they stand, inside a sequence too.
    if (code < 0x20) {
      if (ALLOWED_C0.has(code)) return ch;
      this.count('control character');
      return '';
    }
    if (st.s === 'ground') {
      // DEL and the C1 controls (U+0080-U+009F): some terminals act on them as 8-bit sequences.
      this.count('control character');
      return '';
    }
    if (code === 0x7f) return '';
    if (code > 0x7e) {
      // Not part of any sequence: the sequence is dropped and the character read as text.
      this.count('other escape sequence');
      this.state = { s: 'ground' };
      return code >= 0xa0 ? ch : this.step(code, ch);
    }
    if (st.s === 'esc') return this.inEscape(st, ch);
    if (st.s === 'csi-ignore') {
      if (code >= 0x40) this.state = { s: 'ground' };
      return '';
    }
    st.seq += ch;
    if (code >= 0x40) {
      this.state = { s: 'ground' };
      return this.csi(st.seq);
    }
    if (st.seq.length > MAX_CSI) {
      this.count('other escape sequence');
      this.state = { s: 'csi-ignore' };
    }
    return '';
  }

  private inEscape(st: { s: 'esc'; seq: string }, ch: string): string {
    const code = ch.charCodeAt(0);
    if (st.seq === '') {
      if (ch === '[') return void (this.state = { s: 'csi', seq: '' }), '';
      if (ch === ']') return void (this.state = { s: 'string', name: 'OSC', osc: '', esc: false }), '';
      if (STRING_NAMES[ch]) return void (this.state = { s: 'string', name: STRING_NAMES[ch]!, osc: null, esc: false }), '';
    }
    if (code >= 0x20 && code <= 0x2f) {
      // Intermediates (`ESC (`, `ESC #`, `ESC %`): the final follows.
      st.seq += ch;
      if (st.seq.length > 4) {
        this.count('other escape sequence');
        this.state = { s: 'ground' };
      }
      return '';
    }
    this.state = { s: 'ground' };
    const seq = st.seq + ch;
    if (st.seq === '' && ESC_ALLOWED.has(ch)) return `\x1b${ch}`;
    if (CHARSETS.has(seq)) return `\x1b${seq}`;
    if (seq === 'c') this.count('terminal reset (RIS)');
    else if (seq === '=' || seq === '>') this.count('keypad mode change');
    else if (seq === 'Z') this.count('terminal report request');
    else if (seq === '#8') this.count('screen fill (DECALN)');
    else if (seq === '\\') {
      // A stray string terminator: nothing to drop.
    } else this.count('other escape sequence');
    return '';
  }

  private inString(st: Extract<State, { s: 'string' }>, code: number, ch: string): string {
    if (st.esc) {
      // ESC \ ends the string; ESC and anything else ends it and starts that sequence.
      this.finishString(st);
      if (ch === '\\') return '';
      this.state = { s: 'esc', seq: '' };
      return this.step(code, ch);
    }
    if (code === ST_C1 || (code === 0x07 && st.osc !== null)) return void this.finishString(st), '';
    if (code === CAN || code === SUB) return void this.finishString(st), '';
    // Only the OSC's number is kept, to name what was dropped.
    if (st.osc !== null && st.osc.length < 8) st.osc += ch;
    return '';
  }

  private finishString(st: Extract<State, { s: 'string' }>): void {
    const num = st.osc === null ? null : (/^\d+/.exec(st.osc)?.[0] ?? '');
    this.count(num === null ? st.name : OSC_NAMES[num] ?? `operating system command (OSC ${num || '?'})`);
    this.state = { s: 'ground' };
  }

  /** A complete CSI (`seq` is what followed `ESC [`): passed, narrowed, or dropped. */
  private csi(seq: string): string {
    const final = seq[seq.length - 1]!;
    const body = seq.slice(0, -1);
    const priv = /^[<=>?]/.test(body) ? body[0]! : '';
    const params = priv ? body.slice(1) : body;
    if (!/^[0-9:;]*$/.test(params)) {
      // Intermediates (`CSI ! p` soft reset, `CSI $ p` mode report, `CSI SP q` cursor style) or a malformed sequence.
      this.count(final === 'p' && body === '!' ? 'terminal reset (DECSTR)' : /\$p$|"p$/.test(seq) ? 'terminal report request' : 'other escape sequence');
      return '';
    }
    if (final === 'h' || final === 'l') return this.modes(priv, params, final);
    if (priv) {
      this.count(final === 'c' || final === 'n' ? 'terminal report request' : 'other escape sequence');
      return '';
    }
    if (final === 'm') return this.sgr(params);
    if (CSI_MOVE_EDIT.has(final)) return `\x1b[${seq}`;
    if (final === 'n' || final === 'c' || final === 'x') this.count('terminal report request');
    else if (final === 't') this.count('window operation (CSI t)');
    else if (final === 'i') this.count('printer control (CSI i)');
    else this.count('other escape sequence');
    return '';
  }

  private modes(priv: string, params: string, final: string): string {
    const allowed = priv === '?' ? PRIVATE_MODES : priv === '' ? ANSI_MODES : null;
    const all = params.split(';');
    const kept = allowed ? all.filter((p) => allowed.has(p)) : [];
    if (kept.length < all.length) this.count('terminal mode change');
    return kept.length ? `\x1b[${priv}${kept.join(';')}${final}` : '';
  }

  /** SGR with conceal (8) taken out; extended colors (`38;5;N`, `38;2;R;G;B`, `38:2::R:G:B`) kept whole. */
  private sgr(params: string): string {
    if (params === '') return '\x1b[m';
    const all = params.split(';');
    const kept: string[] = [];
    let concealed = false;
    for (let i = 0; i < all.length; i++) {
      const p = all[i]!;
      if (/^(38|48|58)$/.test(p)) {
        const n = all[i + 1] === '5' ? 2 : all[i + 1] === '2' ? 4 : 0;
        kept.push(...all.slice(i, i + 1 + n));
        i += n;
      } else if (/^0*8$/.test(p)) concealed = true;
      else kept.push(p);
    }
    if (concealed) this.count('concealed text (SGR 8)');
    return kept.length ? `\x1b[${kept.join(';')}m` : '';
  }
}

/** Index of the next character that is not plain text (C0, DEL, C1), or the text's length. */
function nextControl(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return i;
  }
  return text.length;
}

/** `counts` as one line: `clipboard write (OSC 52) ×1, terminal mode change ×3`. */
export function neutralisedText(counts: Map<string, number>): string {
  return [...counts].map(([kind, n]) => `${kind} ×${n}`).join(', ');
}
