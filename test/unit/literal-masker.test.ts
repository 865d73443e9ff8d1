// The masker for credentials the gateway itself sent: every spelling an echo may use, cut
// anywhere across chunks, in a body or a header's text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CREDENTIAL_MASK, LiteralMasker } from '../../gateway/masking/literal-masker.ts';

const TOKEN = 'ab/cd+ef==gh"ij\\kl';
const run = (m: LiteralMasker, chunks: string[]): string => Buffer.concat([...chunks.map((c) => m.push(Buffer.from(c))), m.flush()]).toString();

test('a credential is masked in each spelling an echo uses, wherever the chunks cut it', () => {
  const spelled = [TOKEN, JSON.stringify(TOKEN).slice(1, -1), JSON.stringify(TOKEN).slice(1, -1).replace(/\//g, '\\/'), encodeURIComponent(TOKEN)];
  for (const s of spelled) {
    const text = `{"youSent":"Bearer ${s}","n":1}`;
    for (let cut = 0; cut <= text.length; cut++) {
      const m = new LiteralMasker(() => [TOKEN]);
      const out = run(m, [text.slice(0, cut), text.slice(cut)]);
      assert.ok(!out.includes(s), `${s} cut at ${cut}: ${out}`);
      assert.equal(out, `{"youSent":"Bearer ${CREDENTIAL_MASK}","n":1}`);
    }
  }
});

test('text without a credential passes byte for byte; short values are not masked; headers are masked whole', () => {
  const m = new LiteralMasker(() => [TOKEN, 'short']);
  assert.equal(run(m, ['nothing short here ', 'at all']), 'nothing short here at all');
  assert.equal(m.text(`Bearer ${encodeURIComponent(TOKEN)}`), `Bearer ${CREDENTIAL_MASK}`);
  assert.equal(m.found, 1);
});

test('a value added during the stream (a refreshed token) is masked from then on', () => {
  // The provider hands a new list when it changes (the upstream keeps one frozen array per change).
  let values: readonly string[] = ['first-token-123'];
  const m = new LiteralMasker(() => values);
  const a = m.push(Buffer.from('x first-token-123 y '));
  values = [...values, 'second-token-456'];
  const b = m.push(Buffer.from('second-token-456 z'));
  assert.equal(Buffer.concat([a, b, m.flush()]).toString(), `x ${CREDENTIAL_MASK} y ${CREDENTIAL_MASK} z`);
});

test('only an end that could start a credential is held back: a streamed line goes out whole at once', () => {
  const m = new LiteralMasker(() => ['Bearer tok-0123456789', 'tok-0123456789']);
  assert.equal(m.push(Buffer.from('pod web-0 ADDED\n')).toString(), 'pod web-0 ADDED\n');
  // `Bear` and `tok-01` could be a credential's start: held until the next chunk says.
  assert.equal(m.push(Buffer.from('header: Bear')).toString(), 'header: ');
  assert.equal(m.push(Buffer.from('er tok-0123456789 and tok-01')).toString(), `${CREDENTIAL_MASK} and `);
  assert.equal(m.push(Buffer.from('2x\n')).toString(), 'tok-012x\n');
  assert.equal(m.flush().toString(), '');
});
