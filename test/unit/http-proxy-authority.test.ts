// The forward proxy's one reading of host:port (CONNECT lines, absolute-form URLs, Host and
// :authority): canonical hosts, ports in range, and every ambiguous spelling refused with a reason;
// and what the proxy refuses inside a tunnel before the handler, from the request head alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAuthority, parseAbsoluteForm, parseAuthority, sameAuthority } from '../../gateway/http/proxy-authority.ts';
import { refusal, requestAuthority, upgradeRefusal, UPGRADE_REFUSED, type RequestHead } from '../../gateway/http/forward-proxy-refusals.ts';

test('authorities read to one canonical host and port', () => {
  const cases: [string, number | undefined, string, number][] = [
    ['management.azure.com:443', undefined, 'management.azure.com', 443],
    ['Management.Azure.COM.:443', undefined, 'management.azure.com', 443],
    ['api.internal.example', 443, 'api.internal.example', 443],
    ['10.0.0.4:8443', undefined, '10.0.0.4', 8443],
    ['[::1]:443', undefined, '::1', 443],
    ['[0:0:0:0:0:0:0:1]', 443, '::1', 443],
    ['[::FFFF:127.0.0.1]:1', undefined, '::ffff:7f00:1', 1],
    ['my_host-1.example:65535', undefined, 'my_host-1.example', 65535],
  ];
  for (const [text, dflt, host, port] of cases) assert.deepEqual(parseAuthority(text, dflt), { host, port }, text);
  assert.equal(formatAuthority({ host: '::1', port: 443 }), '[::1]:443');
  assert.equal(formatAuthority({ host: 'a.example', port: 80 }), 'a.example:80');
  assert.ok(sameAuthority(parseAuthority('A.example.', 443) as never, parseAuthority('a.example:443') as never));
});

test('ambiguous or malformed authorities are refused with what is wrong', () => {
  const refused: [string, RegExp][] = [
    ['', /no host:port/],
    ['management.azure.com', /names no port/],
    ['host:0', /not from 1 to 65535/],
    ['host:65536', /not from 1 to 65535/],
    ['host:', /not a number/],
    ['host:+443', /not a number/],
    ['host:443x', /not a number/],
    [':443', /empty/],
    ['::1:443', /IPv6 address goes in brackets/],
    ['[::1:443', /does not close|not an IPv6/],
    ['[fe80::1%25eth0]:443', /cannot/],
    ['[not-v6]:443', /not an IPv6 address/],
    ['user@host:443', /cannot/],
    ['ho st:443', /cannot/],
    ['h%41st:443', /cannot/],
    ['host/x:443', /cannot/],
    ['0x7f.1:443', /other than four decimal numbers/],
    ['127.1:443', /other than four decimal numbers/],
    ['2130706433:443', /other than four decimal numbers/],
    ['127.000.0.1:443', /other than four decimal numbers/],
    ['01.2.3.4:443', /other than four decimal numbers/],
    ['exa*mple.com:443', /not a host name/],
    ['a..b:443', /not a host name/],
    [`${'a'.repeat(64)}.example:443`, /not a host name/],
    [`${'a.'.repeat(130)}b:443`, /longer than 253/],
  ];
  for (const [text, message] of refused) {
    const r = parseAuthority(text);
    assert.ok('error' in r, `${text} was read as ${JSON.stringify(r)}`);
    assert.match(r.error, message, text);
  }
});

test('absolute-form http:// targets give the authority and the origin-form path', () => {
  assert.deepEqual(parseAbsoluteForm('http://api.internal.example/v1/x?y=1'), { authority: { host: 'api.internal.example', port: 80 }, path: '/v1/x?y=1' });
  assert.deepEqual(parseAbsoluteForm('HTTP://API.internal.example:8080'), { authority: { host: 'api.internal.example', port: 8080 }, path: '/' });
  assert.deepEqual(parseAbsoluteForm('http://[::1]:8080?q'), { authority: { host: '::1', port: 8080 }, path: '/?q' });
  for (const [url, message] of [
    ['/relative', /not an absolute http:\/\/ URL/],
    ['https://management.azure.com/x', /goes through CONNECT/],
    ['ftp://files.example/x', /ftp:\/\/ is not proxied/],
    ['http://user:pw@api.internal.example/', /cannot/],
    ['http:///x', /no host:port|empty/],
    ['http://a.example/x#frag', /fragment/],
  ] as const) {
    const r = parseAbsoluteForm(url);
    assert.ok('error' in r, url);
    assert.match(r.error, message, url);
  }
});

test('requests inside a tunnel: the authority they name must be the tunnel\'s; upgrades and nested CONNECT refused', () => {
  const tunnel = { host: 'management.azure.com', port: 443 };
  const h1 = (url: string, raw: string[], extra: Record<string, string> = {}, method = 'GET'): RequestHead => {
    const headers: Record<string, string> = { ...extra };
    for (let i = 0; i < raw.length; i += 2) headers[raw[i]!.toLowerCase()] ??= raw[i + 1]!;
    return { method, url, httpVersionMajor: 1, headers, rawHeaders: raw };
  };
  assert.equal(refusal(h1('/x', ['Host', 'management.azure.com']), tunnel, 443), null);
  assert.equal(refusal(h1('/x', ['Host', 'MANAGEMENT.azure.com.:443']), tunnel, 443), null);
  assert.equal(refusal(h1('/x', ['Host', 'management.azure.com', 'Upgrade', 'h2c']), tunnel, 443), null, 'h2c is ignored, not refused');
  assert.equal(refusal(h1('/x', ['Host', 'api.internal.example']), tunnel, 443)?.status, 421);
  assert.equal(refusal(h1('/x', ['Host', 'management.azure.com:8443']), tunnel, 443)?.status, 421);
  assert.match(refusal(h1('/x', ['Host', 'management.azure.com', 'host', 'api.internal.example']), tunnel, 443)!.message, /more than one host/);
  assert.equal(refusal(h1('/x', []), tunnel, 443)?.status, 400);
  assert.equal(refusal(h1('/x', ['Host', 'a b']), tunnel, 443)?.status, 400);
  assert.equal(refusal(h1('https://api.internal.example/x', ['Host', 'management.azure.com']), tunnel, 443)?.status, 400);
  assert.equal(refusal(h1('*', ['Host', 'management.azure.com']), tunnel, 443)?.status, 400);
  assert.deepEqual(refusal(h1('/x', ['Host', 'management.azure.com', 'Upgrade', 'websocket']), tunnel, 443), { status: 501, message: UPGRADE_REFUSED });
  assert.equal(refusal(h1('/x', ['Host', 'management.azure.com', 'Upgrade', 'h2c, websocket']), tunnel, 443)?.status, 501);
  const h2 = (headers: Record<string, string>, method = 'GET'): RequestHead => ({
    method, url: headers[':path'], httpVersionMajor: 2, headers, rawHeaders: Object.entries(headers).flat(),
  });
  assert.equal(refusal(h2({ ':authority': 'management.azure.com', ':path': '/x' }), tunnel, 443), null);
  assert.equal(refusal(h2({ ':authority': 'management.azure.com', host: 'api.internal.example', ':path': '/x' }), tunnel, 443)?.status, 400);
  assert.equal(refusal(h2({ ':authority': 'api.internal.example', ':path': '/x' }), tunnel, 443)?.status, 421);
  assert.equal(refusal(h2({ ':authority': 'api.internal.example:443' }, 'CONNECT'), tunnel, 443)?.status, 405);
  assert.equal(refusal(h2({ ':authority': 'management.azure.com', ':protocol': 'websocket', ':path': '/ws' }, 'CONNECT'), tunnel, 443)?.status, 501);
  assert.deepEqual(requestAuthority(h1('/', ['Host', 'plain.example']), 80), { host: 'plain.example', port: 80 });
  assert.equal(requestAuthority(h1('/', []), 80), null);
  assert.equal(upgradeRefusal(h1('/', ['Upgrade', 'websocket'], { upgrade: 'websocket' }))?.status, 501);
});
