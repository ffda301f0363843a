import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, DecryptionError } from '../../lib/errors/index.js';
import { LocalKekProvider, addLocalKekVersion, ensureLocalKekDir } from '../../lib/keys/local-kek.js';
import { settledError, useTempDirPerTest } from '../helpers.js';

const tmp = useTempDirPerTest('kek-test-');

describe('ensureLocalKekDir', () => {
  it('creates a 0700 dir with a 0600 kek-v1.key holding 32 random bytes, once', async () => {
    const dir = path.join(tmp(), 'keys');
    expect(await ensureLocalKekDir(dir)).toEqual({ created: true });
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    const file = path.join(dir, 'kek-v1.key');
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect(Buffer.from((await fs.readFile(file, 'utf8')).trim(), 'base64')).toHaveLength(32);
    const before = await fs.readFile(file);
    expect(await ensureLocalKekDir(dir)).toEqual({ created: false });
    expect((await fs.readFile(file)).equals(before)).toBe(true);
    expect(await fs.readdir(dir)).toEqual(['kek-v1.key']);
  });
});

describe('LocalKekProvider', () => {
  it('wraps and unwraps any key under any AAD; a different AAD fails', async () => {
    await ensureLocalKekDir(tmp());
    const kek = await LocalKekProvider.load(tmp());
    const bytes = (max: number) => fc.uint8Array({ minLength: 1, maxLength: max }).map((a) => Buffer.from(a));
    await fc.assert(
      fc.asyncProperty(bytes(64), bytes(100), bytes(100), async (dek, aad, otherAad) => {
        const w = await kek.wrap(dek, aad);
        expect(w.kekId).toBe(kek.id);
        expect(w.kekVersion).toBe(1);
        if (dek.length >= 8) expect(w.wrapped.includes(dek)).toBe(false);
        expect((await kek.unwrap(w, aad)).equals(dek)).toBe(true);
        if (!otherAad.equals(aad)) expect(await settledError(kek.unwrap(w, otherAad))).toBeInstanceOf(DecryptionError);
      }),
      { numRuns: 100 },
    );
  });

  it('fails on a flipped wrapped byte, a wrong version label or another KEK id', async () => {
    await ensureLocalKekDir(tmp());
    const kek = await LocalKekProvider.load(tmp());
    const aad = Buffer.from('tenant-a/1');
    const w = await kek.wrap(randomBytes(32), aad);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: w.wrapped.length - 1 }), fc.integer({ min: 1, max: 255 }), async (i, mask) => {
        const wrapped = Buffer.from(w.wrapped);
        wrapped[i] = wrapped[i]! ^ mask;
        expect(await settledError(kek.unwrap({ ...w, wrapped }, aad))).toBeInstanceOf(DecryptionError);
      }),
    );
    expect(await settledError(kek.unwrap({ ...w, kekVersion: 2 }, aad))).toBeInstanceOf(DecryptionError);
    expect(await settledError(kek.unwrap({ ...w, kekId: 'vault' }, aad))).toBeInstanceOf(DecryptionError);
  });

  it('a different KEK (another directory) cannot unwrap', async () => {
    const a = path.join(tmp(), 'a');
    const b = path.join(tmp(), 'b');
    await ensureLocalKekDir(a);
    await ensureLocalKekDir(b);
    const w = await (await LocalKekProvider.load(a)).wrap(randomBytes(32), Buffer.from('x'));
    expect(await settledError((await LocalKekProvider.load(b)).unwrap(w, Buffer.from('x')))).toBeInstanceOf(
      DecryptionError,
    );
  });

  it('dual-read: after addLocalKekVersion, old wraps still unwrap and new wraps use the new primary', async () => {
    await ensureLocalKekDir(tmp());
    const v1 = await LocalKekProvider.load(tmp());
    const dek = randomBytes(32);
    const aad = Buffer.from('aad');
    const oldWrap = await v1.wrap(dek, aad);

    expect(await addLocalKekVersion(tmp())).toBe(2);
    expect((await fs.stat(path.join(tmp(), 'kek-v2.key'))).mode & 0o777).toBe(0o600);
    const v2 = await LocalKekProvider.load(tmp());
    expect(v2.primaryVersion()).toBe(2);
    expect(v2.versions()).toEqual([1, 2]);
    expect((await v2.unwrap(oldWrap, aad)).equals(dek)).toBe(true);
    const newWrap = await v2.wrap(dek, aad);
    expect(newWrap.kekVersion).toBe(2);
    expect((await v2.unwrap(newWrap, aad)).equals(dek)).toBe(true);
    // The old provider (not reloaded) does not know version 2.
    expect(await settledError(v1.unwrap(newWrap, aad))).toBeInstanceOf(DecryptionError);
  });

  it('refuses a key file with mode 0644, naming the file', async () => {
    await ensureLocalKekDir(tmp());
    await addLocalKekVersion(tmp());
    const loose = path.join(tmp(), 'kek-v2.key');
    await fs.chmod(loose, 0o644);
    const err = await settledError(LocalKekProvider.load(tmp()));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(loose);
    expect((err as Error).message).toContain('0644');
    expect((err as Error).message).not.toContain((await fs.readFile(loose, 'utf8')).trim());
  });

  it('refuses an empty directory, a missing directory and a key of the wrong length', async () => {
    expect(await settledError(LocalKekProvider.load(tmp()))).toBeInstanceOf(ConfigError);
    await fs.writeFile(path.join(tmp(), 'README'), 'not a key', { mode: 0o600 });
    expect(await settledError(LocalKekProvider.load(tmp()))).toBeInstanceOf(ConfigError);
    expect(await settledError(LocalKekProvider.load(path.join(tmp(), 'missing')))).toBeInstanceOf(ConfigError);
    await fs.writeFile(path.join(tmp(), 'kek-v1.key'), randomBytes(16).toString('base64'), { mode: 0o600 });
    const err = await settledError(LocalKekProvider.load(tmp()));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('kek-v1.key');
  });

  it('does not expose key bytes through JSON or inspection', async () => {
    await ensureLocalKekDir(tmp());
    const kek = await LocalKekProvider.load(tmp());
    const keyB64 = (await fs.readFile(path.join(tmp(), 'kek-v1.key'), 'utf8')).trim();
    const keyHex = Buffer.from(keyB64, 'base64').toString('hex');
    const { inspect } = await import('node:util');
    for (const shown of [JSON.stringify(kek), inspect(kek, { depth: 5, showHidden: true })]) {
      expect(shown).not.toContain(keyB64);
      expect(shown).not.toContain(keyHex);
    }
  });
});
