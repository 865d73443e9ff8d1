// The report's inline player for terminal recordings: the `asciinema-player` package's bundle
// (JS and CSS) inlined into the self-contained report, allowed by hash in its CSP like the
// report's own script, and each recording embedded as JSON data beside its text view. The player
// starts when its button is clicked; without JS the button stays hidden and the text view is
// what the report shows. A recording is attacker-influenced text: its JSON has every `<`, `>`
// and `&` written as a \u escape, so nothing in it can end the data element or open a comment,
// and its output went through the same sanitizer as `replay --play`.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { esc } from './html-text.ts';
import { TerminalSanitizer } from './terminal-sanitizer.ts';
import type { Sample } from './record-shapes.ts';

type TerminalSample = Extract<Sample, { kind: 'terminal' }>;

/** The package's files: copied beside the bundle by scripts/build.ts (dist/ runs with no node_modules). */
export const PLAYER_FILES = { js: 'asciinema-player.min.js', css: 'asciinema-player.css' } as const;

/** Starts each recording's player on its button's click; shows the button only where the player loaded. */
export const PLAYER_INIT_JS = `
(function () {
  'use strict';
  var player = window.AsciinemaPlayer;
  if (!player) return;
  Array.prototype.forEach.call(document.querySelectorAll('.term-player'), function (box) {
    var button = box.querySelector('.term-play'), screen = box.querySelector('.term-screen'), data = box.querySelector('script.term-data');
    if (!button || !screen || !data) return;
    box.hidden = false;
    button.addEventListener('click', function () {
      button.hidden = true;
      try {
        player.create({ data: JSON.parse(data.textContent) }, screen, { autoPlay: true, controls: true, fit: 'width' });
      } catch (e) {
        screen.textContent = 'This recording cannot be played: ' + e.message;
      }
    });
  });
})();
`;

const PLAYER_CSS_EXTRA = `
.term-player { margin: 6px 0; }
.term-play { font: inherit; font-size: 12.5px; padding: 3px 12px; border: 1px solid var(--line, #d1d9e0); border-radius: 6px; background: #f6f8fa; cursor: pointer; }
.term-play:hover { background: #eef1f4; }
.term-screen { max-width: 960px; }
.term-screen:empty { display: none; }
`;

export interface PlayerAssets { js: string; css: string }

let cached: PlayerAssets | null | undefined;

/** The player's script (the package's bundle, then the starter) and stylesheet; null when the package cannot be found. */
export function playerAssets(): PlayerAssets | null {
  if (cached !== undefined) return cached;
  const read = (name: string): string | null => {
    const beside = path.join(path.dirname(fileURLToPath(import.meta.url)), name);
    try {
      return fs.readFileSync(fs.existsSync(beside) ? beside : createRequire(import.meta.url).resolve(`asciinema-player/dist/bundle/${name}`), 'utf8');
    } catch {
      return null;
    }
  };
  const js = read(PLAYER_FILES.js);
  const css = read(PLAYER_FILES.css);
  // The bundle is inlined in a <script> element: it must not hold what would end one.
  cached = js !== null && css !== null && !/<\/script|<!--/i.test(js) && !/<\/style/i.test(css) ? { js: `${js}\n${PLAYER_INIT_JS}`, css: `${css}\n${PLAYER_CSS_EXTRA}` } : null;
  return cached;
}

/** JSON for a data element inside HTML: `<`, `>`, `&`, U+2028 and U+2029 as \u escapes (the same JSON value). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The recording as the player reads asciicast v2: a header, then events in seconds; output sanitized, input left out. */
export function playerRecording(s: TerminalSample): unknown[] {
  const sanitizer = new TerminalSanitizer();
  const events: unknown[] = [];
  for (const [ms, code, data] of s.events) {
    const out = code === 'o' ? sanitizer.write(data) : code === 'r' ? data : '';
    if (out) events.push([ms / 1000, code, out]);
  }
  return [{ version: 2, width: s.width, height: s.height }, ...events];
}

/** A recording's player (hidden until the script shows it) with its data, or a note when the player is missing. */
export function playerBlock(s: TerminalSample): string {
  if (!playerAssets()) return '<p class="note">The inline player (asciinema-player) is not in this build: the recording is shown as text only.</p>';
  const duration = s.events.length ? (s.events[s.events.length - 1]![0] - s.events[0]![0]) / 1000 : 0;
  return `<div class="term-player" hidden><button type="button" class="term-play">▶ Play the recording (${esc(s.width)}x${esc(s.height)}, ${duration.toFixed(1)} s)</button><div class="term-screen"></div>`
    + `<script type="application/json" class="term-data">${scriptJson(playerRecording(s))}</script></div>`;
}
