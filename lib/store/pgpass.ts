/**
 * Reads a password out of a PostgreSQL password file (libpq's `.pgpass` format), so one file is
 * the only place a role's password is written: the services log in with it (pg reads PGPASSFILE)
 * and the migration job sets the role's password from it (workers/migrate.ts).
 *
 * Format (libpq): one `hostname:port:database:username:password` per line; `*` in the first four
 * fields matches anything; `\:` and `\\` escape; lines starting with `#` are comments; the first
 * matching line wins.
 */

export interface PgpassTarget {
  host: string;
  port: string;
  database: string;
  user: string;
}

/** The fields of one line, unescaped, or undefined for a comment, a blank or a malformed line. */
function parseLine(line: string): string[] | undefined {
  if (line.length === 0 || line.startsWith('#')) return undefined;
  const fields: string[] = [];
  let current = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && i + 1 < line.length) {
      current += line[++i]!;
    } else if (ch === ':' && fields.length < 4) {
      fields.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  fields.push(current);
  return fields.length === 5 ? fields : undefined;
}

/** The password the file holds for `target`, or undefined when no line matches. */
export function pgpassPassword(text: string, target: PgpassTarget): string | undefined {
  const wanted = [target.host, target.port, target.database, target.user];
  for (const raw of text.split(/\r?\n/)) {
    const fields = parseLine(raw);
    if (!fields) continue;
    if (wanted.every((value, i) => fields[i] === '*' || fields[i] === value)) return fields[4];
  }
  return undefined;
}

/** What pg looks a URL up by: host, port (default 5432), database (default: the user), user. */
export function pgpassTargetOf(databaseUrl: string): PgpassTarget {
  const u = new URL(databaseUrl);
  const user = decodeURIComponent(u.username);
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || user;
  return { host: u.hostname, port: u.port || '5432', database, user };
}
