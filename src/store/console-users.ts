/**
 * Console users and their sessions. Counters that decide a lockout move in one conditional statement,
 * so concurrent wrong guesses cannot each read "below the limit" and together pass it.
 */
import { type Kysely, sql } from 'kysely';
import type { ConsoleRole, Database } from './schema.js';

export interface ConsoleUserRecord {
  id: string;
  email: string;
  role: ConsoleRole;
  passwordHash: string;
  failedSignIns: number;
  lockedUntil: Date | null;
  disabledAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

function fromRow(r: {
  id: string;
  email: string;
  role: ConsoleRole;
  password_hash: string;
  failed_sign_ins: number;
  locked_until: Date | null;
  disabled_at: Date | null;
  created_at: Date;
  updated_at: Date;
}): ConsoleUserRecord {
  return {
    id: r.id,
    email: r.email,
    role: r.role,
    passwordHash: r.password_hash,
    failedSignIns: r.failed_sign_ins,
    lockedUntil: r.locked_until,
    disabledAt: r.disabled_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Null when the email is taken (case-insensitively): the unique index decides, not a prior read. */
export async function insertConsoleUser(
  db: Kysely<Database>,
  user: { id: string; email: string; role: ConsoleRole; passwordHash: string },
  now: Date,
): Promise<ConsoleUserRecord | null> {
  const row = await db
    .insertInto('console_users')
    .values({
      id: user.id,
      email: user.email,
      role: user.role,
      password_hash: user.passwordHash,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.expression(sql`lower(email)`).doNothing())
    .returningAll()
    .executeTakeFirst();
  return row ? fromRow(row) : null;
}

export async function findConsoleUserByEmail(
  db: Kysely<Database>,
  email: string,
): Promise<ConsoleUserRecord | null> {
  const row = await db
    .selectFrom('console_users')
    .selectAll()
    .where(sql<string>`lower(email)`, '=', email.toLowerCase())
    .executeTakeFirst();
  return row ? fromRow(row) : null;
}

export async function findConsoleUser(
  db: Kysely<Database>,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<ConsoleUserRecord | null> {
  let query = db.selectFrom('console_users').selectAll().where('id', '=', id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? fromRow(row) : null;
}

/** Oldest first (by id), `limit` from after the cursor. */
export async function listConsoleUsers(
  db: Kysely<Database>,
  page: { limit: number; after?: string | undefined },
): Promise<ConsoleUserRecord[]> {
  let query = db.selectFrom('console_users').selectAll().orderBy('id').limit(page.limit);
  if (page.after !== undefined) query = query.where('id', '>', page.after);
  return (await query.execute()).map(fromRow);
}

export async function updateConsoleUser(
  db: Kysely<Database>,
  id: string,
  change: { role?: ConsoleRole; disabledAt?: Date | null; passwordHash?: string; unlock?: boolean },
  now: Date,
): Promise<ConsoleUserRecord | null> {
  const row = await db
    .updateTable('console_users')
    .set({
      updated_at: now,
      ...(change.role !== undefined ? { role: change.role } : {}),
      ...(change.disabledAt !== undefined ? { disabled_at: change.disabledAt } : {}),
      ...(change.unlock ? { failed_sign_ins: 0, locked_until: null } : {}),
      // A new password also lifts a lock: the admin who reset it vouches for the person.
      ...(change.passwordHash !== undefined
        ? { password_hash: change.passwordHash, failed_sign_ins: 0, locked_until: null }
        : {}),
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  return row ? fromRow(row) : null;
}

/**
 * Counts one failed sign-in. The failure that reaches `limit` locks the user until `lockedUntil` and
 * resets the count; failures while locked are not counted (the lock does not grow without end, so a
 * stranger cannot keep a colleague out for longer than one lock at a time). Answers whether this call
 * locked the user.
 */
export async function recordFailedSignIn(
  db: Kysely<Database>,
  id: string,
  limit: number,
  lockedUntil: Date,
  now: Date,
): Promise<{ locked: boolean }> {
  const row = await db
    .updateTable('console_users')
    .set({
      failed_sign_ins: sql`CASE WHEN failed_sign_ins + 1 >= ${limit} THEN 0 ELSE failed_sign_ins + 1 END`,
      locked_until: sql`CASE WHEN failed_sign_ins + 1 >= ${limit} THEN ${lockedUntil}::timestamptz ELSE locked_until END`,
    })
    .where('id', '=', id)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
    .returning(['failed_sign_ins', 'locked_until'])
    .executeTakeFirst();
  return { locked: row !== undefined && row.locked_until !== null && row.locked_until > now };
}

export async function clearFailedSignIns(
  db: Kysely<Database>,
  id: string,
  passwordHash: string | null,
): Promise<void> {
  await db
    .updateTable('console_users')
    .set({
      failed_sign_ins: 0,
      locked_until: null,
      ...(passwordHash !== null ? { password_hash: passwordHash } : {}),
    })
    .where('id', '=', id)
    .execute();
}

export async function insertSession(
  db: Kysely<Database>,
  session: { idHash: string; userId: string },
  now: Date,
): Promise<void> {
  await db
    .insertInto('console_sessions')
    .values({ id_hash: session.idHash, user_id: session.userId, created_at: now, last_seen_at: now })
    .execute();
}

export interface ActiveSession {
  userId: string;
  email: string;
  role: ConsoleRole;
  createdAt: Date;
  lastSeenAt: Date;
}

/**
 * The session behind `idHash` if it is live — not revoked, not idle since `idleSince`, not older than
 * `createdSince`, its user not disabled — marked as seen now, in one statement.
 */
export async function touchSession(
  db: Kysely<Database>,
  idHash: string,
  bounds: { idleSince: Date; createdSince: Date },
  now: Date,
): Promise<ActiveSession | null> {
  const row = await db
    .updateTable('console_sessions as s')
    .from('console_users as u')
    .set({ last_seen_at: now })
    .whereRef('u.id', '=', 's.user_id')
    .where('s.id_hash', '=', idHash)
    .where('s.revoked_at', 'is', null)
    .where('s.last_seen_at', '>', bounds.idleSince)
    .where('s.created_at', '>', bounds.createdSince)
    .where('u.disabled_at', 'is', null)
    .returning(['s.user_id', 'u.email', 'u.role', 's.created_at', 's.last_seen_at'])
    .executeTakeFirst();
  return row
    ? {
        userId: row.user_id,
        email: row.email,
        role: row.role,
        createdAt: row.created_at,
        lastSeenAt: row.last_seen_at,
      }
    : null;
}

/** True when this call revoked it. */
export async function revokeSession(db: Kysely<Database>, idHash: string, now: Date): Promise<boolean> {
  const rows = await db
    .updateTable('console_sessions')
    .set({ revoked_at: now })
    .where('id_hash', '=', idHash)
    .where('revoked_at', 'is', null)
    .execute();
  return rows.some((r) => Number(r.numUpdatedRows) > 0);
}

/** Revokes every live session of a user but `keep` (the caller's own, on a password change). */
export async function revokeSessionsOf(
  db: Kysely<Database>,
  userId: string,
  now: Date,
  keep?: string,
): Promise<void> {
  let query = db
    .updateTable('console_sessions')
    .set({ revoked_at: now })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null);
  if (keep !== undefined) query = query.where('id_hash', '<>', keep);
  await query.execute();
}

/** Sessions that can never be live again (revoked or past the absolute timeout) of one user. */
export async function deleteDeadSessions(
  db: Kysely<Database>,
  userId: string,
  createdSince: Date,
): Promise<void> {
  await db
    .deleteFrom('console_sessions')
    .where('user_id', '=', userId)
    .where((eb) => eb.or([eb('revoked_at', 'is not', null), eb('created_at', '<=', createdSince)]))
    .execute();
}
