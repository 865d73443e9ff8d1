// Checkpoints are standard JOSE: any library verifies them, and jose signs the same bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompactSign, calculateJwkThumbprint, compactVerify, importJWK } from 'jose';
import type { KeyObject } from 'node:crypto';
import { CheckpointSigner, CheckpointVerifier, checkpointPayloadText, keyAudience } from '../../gateway/evidence/checkpoint.ts';

test('a checkpoint is a compact JWS (EdDSA) that jose verifies, byte for byte what jose would sign', async () => {
  const signer = new CheckpointSigner();
  const payload = { run: 'r1', seq: 41, head: 'ab'.repeat(32), seal: false, time: '2026-11-22T10:00:00.000Z' };
  const jws = signer.sign(payload);
  const { payload: signed, protectedHeader } = await compactVerify(jws, await importJWK(signer.jwk, 'EdDSA'));
  assert.equal(Buffer.from(signed).toString(), '{"head":"' + 'ab'.repeat(32) + '","run":"r1","seal":false,"seq":41,"time":"2026-11-22T10:00:00.000Z"}');
  assert.equal(protectedHeader.alg, 'EdDSA');
  assert.equal(protectedHeader.kid, signer.thumbprint);
  // Ed25519 is deterministic: jose with the same key and header yields the same JWS.
  const privateKey = (signer as unknown as { privateKey: KeyObject }).privateKey;
  const viaJose = await new CompactSign(new TextEncoder().encode(checkpointPayloadText(payload)))
    .setProtectedHeader(JSON.parse(Buffer.from(jws.split('.')[0]!, 'base64url').toString()) as { alg: string })
    .sign(privateKey);
  assert.equal(viaJose, jws);
});

test('the key thumbprint is RFC 7638 and the binding audience names it', async () => {
  const signer = new CheckpointSigner();
  assert.equal(signer.thumbprint, await calculateJwkThumbprint(signer.jwk, 'sha256'));
  assert.equal(keyAudience(signer.thumbprint), `gateway-action:jwk:${signer.thumbprint}`);
});

test('the verifier names what is wrong with a checkpoint', () => {
  const signer = new CheckpointSigner();
  const v = new CheckpointVerifier(signer.jwk);
  const p = { run: 'r1', seq: 9, head: 'cd'.repeat(32), seal: true, time: '2026-11-22T10:00:00.000Z' };
  const jws = signer.sign(p);
  assert.equal(v.problem(jws, p), null);
  assert.match(String(v.problem(jws, { ...p, seq: 10 })), /not this position in the chain/);
  assert.match(String(v.problem(jws, { ...p, run: 'r2' })), /not this position in the chain/);
  assert.match(String(v.problem(jws, { ...p, time: '2030-01-01T00:00:00.000Z' })), /not this position in the chain/);
  // The same signature spelled differently (stray characters, unused low bits) is refused.
  const [h0, p0, s0] = jws.split('.') as [string, string, string];
  assert.match(String(v.problem(`${h0}.${p0}.${s0.slice(0, 40)}!*~${s0.slice(40)}`, p)), /not canonical base64url/);
  const last = s0.at(-1)!;
  const respelled = s0.slice(0, -1) + String.fromCharCode(last.charCodeAt(0) ^ 1);
  if (Buffer.from(respelled, 'base64url').equals(Buffer.from(s0, 'base64url'))) assert.match(String(v.problem(`${h0}.${p0}.${respelled}`, p)), /not canonical base64url/);
  assert.match(String(v.problem(`${Buffer.from('null').toString('base64url')}.${p0}.${s0}`, p)), /header is not a JSON object/);
  assert.match(String(v.problem(new CheckpointSigner().sign(p), p)), /does not verify with the log's public key/);
  assert.match(String(v.problem(jws.split('.').slice(0, 2).join('.'), p)), /not in compact form/);
  assert.match(String(v.problem(undefined, p)), /has no JWS/);
  const [, body, sig] = jws.split('.');
  assert.match(String(v.problem(`${Buffer.from('{"alg":"none"}').toString('base64url')}.${body}.${sig}`, p)), /algorithm "none"/);
  assert.throws(() => new CheckpointVerifier({ kty: 'RSA', n: 'x', e: 'AQAB' }), /not an Ed25519 public JWK/);
});
