// The SFTP pieces that are pure: framing whatever the cut, requests parsed exactly (trailing
// bytes and unknown flags are malformed), handles swapped in place, the offset-ordered digest,
// and what each path-naming request is as the gate sees it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  FX, FXP, FieldReader, Malformed, SftpFramer, SftpProtocolError, handlePacket, limitsReplyPacket, parseLimitsReply, parseRequest, statusPacket, withHandle,
} from '../../gateway/ssh/sftp-codec.ts';
import { routeRequest } from '../../gateway/ssh/sftp-route.ts';
import { OffsetDigest } from '../../gateway/ssh/sftp-digest.ts';
import { describeExtended, describeRequest } from '../../gateway/ssh/sftp-operations.ts';
import { normalizePath } from '../../gateway/ssh/file-operation.ts';

/** A request frame: type, id, then u32 fields (numbers), u64 fields (bigints) and strings. */
function req(type: number, id: number, ...fields: (number | bigint | string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from([type]), u32(id)];
  for (const f of fields) {
    if (typeof f === 'number') parts.push(u32(f));
    else if (typeof f === 'bigint') {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(f);
      parts.push(b);
    } else {
      const s = typeof f === 'string' ? Buffer.from(f) : f;
      parts.push(u32(s.length), s);
    }
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length), body]);
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

test('the framer gives the same packets whatever the cut; a length of 0 or over the bound is not SFTP', () => {
  const frames = [req(FXP.OPEN, 1, '/a', 0x1a, 4, 0o644), req(FXP.WRITE, 2, 'h1', 0n, randomBytes(70_000)), req(FXP.CLOSE, 3, 'h1'), statusPacket(4, FX.OK, 'ok')];
  const stream = Buffer.concat(frames);
  for (const size of [1, 2, 3, 5, 4096, stream.length]) {
    const f = new SftpFramer(256 * 1024);
    const got: Buffer[] = [];
    for (let i = 0; i < stream.length; i += size) f.push(stream.subarray(i, i + size), (p) => got.push(Buffer.from(p)));
    assert.deepEqual(got, frames, `cut every ${size}`);
    assert.ok(f.idle);
  }
  assert.throws(() => new SftpFramer(1024).push(u32(0), () => undefined), SftpProtocolError);
  assert.throws(() => new SftpFramer(1024).push(Buffer.concat([u32(1025), Buffer.alloc(3)]), () => undefined), SftpProtocolError);
  const partial = new SftpFramer(1024);
  partial.push(u32(9).subarray(0, 2), () => undefined);
  assert.throws(() => partial.push(Buffer.from([0x04, 0x01]), () => undefined), SftpProtocolError, 'a length cut in two is still checked');
});

test('requests parse exactly; short packets, trailing bytes and unknown flags are malformed', () => {
  const open = parseRequest(req(FXP.OPEN, 7, '/srv/x', 0x1a, 0x4, 0o640));
  assert.deepEqual({ ...open, path: (open as { path: Buffer }).path.toString() }, { type: 'open', id: 7, path: '/srv/x', pflags: 0x1a, attrs: { permissions: 0o640 } });
  const write = parseRequest(req(FXP.WRITE, 8, 'hh', 1n << 40n, 'data'));
  assert.equal(write.type, 'write');
  if (write.type === 'write') {
    assert.equal(write.offset, 2 ** 40);
    assert.equal(write.data.toString(), 'data');
  }
  assert.deepEqual(parseRequest(req(99, 9)), { type: 'unknown', id: 9, packetType: 99 });
  const ext = parseRequest(req(FXP.EXTENDED, 10, 'statvfs@openssh.com', '/'));
  assert.equal(ext.type === 'extended' && ext.name, 'statvfs@openssh.com');
  for (const bad of [
    req(FXP.REMOVE, 1, '/a', 'extra'), // trailing string
    req(FXP.READ, 1, 'h', 0n), // no length
    req(FXP.SETSTAT, 1, '/a', 0x40), // unknown attribute flag
    req(FXP.OPEN, 1, '/a', 1, 0x1), // size flag without the size
    Buffer.concat([u32(5), Buffer.from([FXP.STAT]), u32(1)]).subarray(0, 9), // no path at all
  ]) {
    assert.throws(() => parseRequest(bad), Malformed, bad.toString('hex'));
  }
});

test('a handle is swapped in place, the length prefix fixed, the rest untouched', () => {
  const frame = req(FXP.WRITE, 5, Buffer.from([0, 0, 0, 1]), 4096n, 'payload');
  const parsed = parseRequest(frame);
  assert.equal(parsed.type, 'write');
  if (parsed.type !== 'write') return;
  const swapped = withHandle(frame, parsed.h, Buffer.from('a-much-longer-host-handle'));
  assert.deepEqual(swapped, req(FXP.WRITE, 5, 'a-much-longer-host-handle', 4096n, 'payload'));
  assert.deepEqual(handlePacket(3, Buffer.from('x')), Buffer.concat([u32(10), Buffer.from([FXP.HANDLE]), u32(3), u32(1), Buffer.from('x')]));
  const r = new FieldReader(statusPacket(4, FX.PERMISSION_DENIED, 'denied by rule x'), 5);
  assert.deepEqual([r.u32(), r.u32(), r.string().toString(), r.string().toString()], [4, 3, 'denied by rule x', 'en']);
});

test('the digest is of the bytes in offset order: reordered pieces within the bound are still sequential', () => {
  const data = randomBytes(100_000);
  const whole = createHash('sha256').update(data).digest('hex');
  const pieces = Array.from({ length: 25 }, (_, i) => ({ offset: i * 4000, data: data.subarray(i * 4000, (i + 1) * 4000) }));
  const inOrder = new OffsetDigest();
  for (const p of pieces) inOrder.add(p.offset, p.data);
  assert.deepEqual(inOrder.result(), { bytes: 100_000, sha256: whole, sequential: true });
  // A short read answered, then the rest asked again after later requests.
  const shuffled = new OffsetDigest();
  shuffled.add(0, data.subarray(0, 1000));
  for (const p of pieces.slice(1)) shuffled.add(p.offset, p.data);
  shuffled.add(1000, data.subarray(1000, 4000));
  assert.deepEqual(shuffled.result(), { bytes: 100_000, sha256: whole, sequential: true });

  const gap = new OffsetDigest();
  gap.add(0, data.subarray(0, 10));
  gap.add(20, data.subarray(20, 30));
  const g = gap.result();
  assert.equal(g.sequential, false);
  assert.equal(g.sha256, createHash('sha256').update(data.subarray(0, 10)).update(data.subarray(20, 30)).digest('hex'));
  const overlap = new OffsetDigest();
  overlap.add(0, data.subarray(0, 10));
  overlap.add(5, data.subarray(5, 15));
  assert.equal(overlap.result().sequential, false);
  const resumed = new OffsetDigest();
  resumed.add(4096, data.subarray(0, 10));
  assert.equal(resumed.result().sequential, false, 'a transfer not starting at 0 is not the file');
  const bounded = new OffsetDigest(1000);
  bounded.add(2000, data.subarray(0, 800));
  bounded.add(3000, data.subarray(0, 800)); // over the bound: order is given up, memory is not
  assert.equal(bounded.result().sequential, false);
});

test('path-naming requests as the gate sees them: absolute, normalised, exact or refused', () => {
  const start = '/home/u';
  const d = (frame: Buffer) => describeRequest(parseRequest(frame), start);
  assert.deepEqual(d(req(FXP.OPEN, 1, 'rel/./x//y/../f', 0x1a, 4, 0o600)), {
    operation: { op: 'open', paths: ['/home/u/rel/x/f'], mode: 'write', flags: ['create', 'truncate'], text: 'open /home/u/rel/x/f for write (create, truncate, mode 0600)' },
  });
  assert.deepEqual(d(req(FXP.OPEN, 1, '/etc/hosts', 0x1, 0)), { operation: { op: 'open', paths: ['/etc/hosts'], mode: 'read', flags: [], text: 'open /etc/hosts for read' } });
  assert.deepEqual(d(req(FXP.REMOVE, 1, '/a/../../root/x')), { operation: { op: 'remove', paths: ['/root/x'], text: 'remove /root/x' } });
  // OpenSSH sends a symlink's target first; a relative target resolves from the link's directory.
  assert.deepEqual(d(req(FXP.SYMLINK, 1, '../../root/.ssh', '/tmp/l')), {
    operation: { op: 'symlink', paths: ['/tmp/l', '/root/.ssh'], text: 'symlink /tmp/l -> ../../root/.ssh' },
  });
  assert.deepEqual(d(req(FXP.SETSTAT, 1, 'f', 0xc, 0o4755, 1, 2)), {
    operation: { op: 'setstat', paths: ['/home/u/f'], text: 'setstat /home/u/f (mode 4755, atime 1970-01-01T00:00:01.000Z, mtime 1970-01-01T00:00:02.000Z)' },
  });
  assert.equal(JSON.stringify(d(req(FXP.MKDIR, 1, 'new\nline', 0))), JSON.stringify({ operation: { op: 'mkdir', paths: ['/home/u/new\nline'], text: 'mkdir "/home/u/new\\nline"' } }));
  const notUtf8 = d(req(FXP.STAT, 1, Buffer.from([0x2f, 0xff])));
  assert.ok('refuse' in notUtf8 && notUtf8.refuse.code === FX.PERMISSION_DENIED && /not UTF-8/.test(notUtf8.refuse.message));
  assert.ok('refuse' in d(req(FXP.STAT, 1, 'a\0b')));
  assert.ok('refuse' in d(req(FXP.OPEN, 1, '/a', 0x40, 0)), 'unknown open flags');
  const noStart = describeRequest(parseRequest(req(FXP.STAT, 1, 'relative')), null);
  assert.ok('refuse' in noStart && /start directory is unknown/.test(noStart.refuse.message));

  const ext = (name: string, ...fields: (number | string)[]) => {
    const r = parseRequest(req(FXP.EXTENDED, 1, name, ...fields));
    return r.type === 'extended' ? describeExtended(r.name, r.r, start) : null;
  };
  assert.deepEqual(ext('posix-rename@openssh.com', 'a', '/b'), { operation: { op: 'rename', paths: ['/home/u/a', '/b'], flags: ['posix'], text: 'rename /home/u/a -> /b (posix)' } });
  assert.deepEqual(ext('hardlink@openssh.com', '/etc/shadow', 'copy'), { operation: { op: 'hardlink', paths: ['/home/u/copy', '/etc/shadow'], text: 'hardlink /home/u/copy -> /etc/shadow' } });
  assert.deepEqual(ext('expand-path@openssh.com', '~/x/..'), { operation: { op: 'realpath', paths: ['/home/u'], flags: ['expand-path'], text: 'realpath ~/x/.. (expand-path)' } });
  assert.deepEqual(ext('lsetstat@openssh.com', 'l', 4, 0o644), { operation: { op: 'setstat', paths: ['/home/u/l'], flags: ['nofollow'], text: 'setstat /home/u/l (nofollow, mode 0644)' } });
  assert.throws(() => ext('statvfs@openssh.com', '/', 'extra'), Malformed);
  assert.equal(normalizePath('../../..', '/a'), '/');
});

test('requests are routed: to the gate, to an open handle, answered by the gateway', () => {
  const relayed = new Set(['limits@openssh.com', 'fsync@openssh.com', 'statvfs@openssh.com']);
  const route = (frame: Buffer) => routeRequest(frame, '/home/u', relayed);
  assert.equal(route(req(FXP.OPEN, 1, 'x', 1, 0)).route, 'gate');
  assert.deepEqual(route(req(FXP.EXTENDED, 2, 'limits@openssh.com')), { route: 'limits' });
  assert.equal(route(req(FXP.EXTENDED, 3, 'limits@openssh.com', 'extra')).route, 'answer');
  const fsync = route(req(FXP.EXTENDED, 4, 'fsync@openssh.com', 'h'));
  assert.ok(fsync.route === 'handle' && fsync.use === 'file' && fsync.ref.handle.toString() === 'h');
  const write = route(req(FXP.WRITE, 5, 'h', 0n, 'd'));
  assert.ok(write.route === 'handle' && write.use === 'writing');
  assert.ok(route(req(FXP.FSETSTAT, 6, 'h', 0)).route === 'handle');
  assert.deepEqual(route(req(FXP.EXTENDED, 7, 'copy-data', 'a')), { route: 'answer', code: FX.OP_UNSUPPORTED, message: 'the gateway does not relay the copy-data extension' });
  assert.deepEqual(route(req(FXP.REMOVE, 8, '/a', 'b')), { route: 'answer', code: FX.BAD_MESSAGE, message: 'malformed request: 5 bytes after the last field' });
  const limits = { packet: 262144, read: 261120, write: 261120, handles: 0 };
  assert.deepEqual(parseLimitsReply(limitsReplyPacket(9, limits)), limits);
});
