/**
 * Reads a `file:<absolute path>` or `env:VARNAME` reference (DESIGN §4 invariant 11). Secret files
 * (private keys) are refused when group/world-accessible; errors name the field and the reference,
 * never the content. Same rules as lib/security/signing-keys.ts.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../lib/errors/index.js';

export async function readRef(ref: string, field: string, opts: { secret: boolean }): Promise<string> {
  if (ref.startsWith('file:')) {
    const file = ref.slice('file:'.length);
    if (!path.isAbsolute(file)) throw new ConfigError(field, 'file: references must name an absolute path');
    let st;
    try {
      st = await fs.stat(file);
    } catch (err) {
      throw new ConfigError(field, `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!st.isFile()) throw new ConfigError(field, `${file} is not a regular file`);
    if (opts.secret && (st.mode & 0o077) !== 0) {
      throw new ConfigError(field, `${file} has mode 0${(st.mode & 0o777).toString(8)}; it must not be accessible by group or others (chmod 600 it)`);
    }
    return fs.readFile(file, 'utf8');
  }
  if (ref.startsWith('env:')) {
    const name = ref.slice('env:'.length);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new ConfigError(field, 'env: references must name an environment variable');
    const value = process.env[name];
    if (value === undefined || value.trim() === '') throw new ConfigError(field, `environment variable ${name} is not set`);
    return value.includes('-----BEGIN') && !value.includes('\n') ? value.replace(/\\n/g, '\n') : value;
  }
  throw new ConfigError(field, 'must be a secret reference starting with file: or env:');
}
