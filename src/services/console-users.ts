/**
 * People who use the console: their roles (each a set of API scopes), passwords, sign-in with a
 * lockout, and database sessions with idle and absolute timeouts. Every change is audited as the
 * person who made it; a sign-in failure is audited against the user it named.
 */
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import {
  type CsrfTokens,
  hashSessionId,
  looksLikeSessionId,
  newSessionId,
} from '../security/console-sessions.js';
import {
  type PasswordHasher,
  PasswordQueueFull,
  type PasswordRules,
  weakPasswordReason,
} from '../security/passwords.js';
import { insertAudit } from '../store/audit.js';
import {
  type ConsoleUserRecord,
  clearFailedSignIns,
  deleteDeadSessions,
  findConsoleUser,
  findConsoleUserByEmail,
  insertConsoleUser,
  insertSession,
  listConsoleUsers,
  recordFailedSignIn,
  revokeSession,
  revokeSessionsOf,
  touchSession,
  updateConsoleUser,
} from '../store/console-users.js';
import type { ConsoleRole } from '../store/schema.js';
import type { Scope } from './api-keys.js';
import type { Actor, ServiceContext } from './context.js';

export const ROLES = [
  'marketing',
  'fraud',
  'on_call',
  'finance',
  'admin',
] as const satisfies readonly ConsoleRole[];

/**
 * The API scopes each role holds: a signed-in person passes exactly the scope checks a key with these
 * scopes passes. On-call needs the kill switch, throttles, partner caps and the audit trail, which are
 * fraud routes. No role holds `checkout`: redeeming is for machines.
 */
export const ROLE_SCOPES: Record<ConsoleRole, readonly Scope[]> = {
  marketing: ['marketing'],
  fraud: ['fraud'],
  on_call: ['fraud'],
  finance: ['finance'],
  admin: ['admin'],
};

/** A signed-in person as a request sees them. */
export interface ConsolePrincipal {
  userId: string;
  email: string;
  role: ConsoleRole;
  scopes: readonly Scope[];
  /** The session's id hash (what sign-out and a password change act on). */
  sessionHash: string;
  csrfToken: string;
  /** When the session ends if unused: the earlier of the idle and the absolute timeout. */
  expiresAt: Date;
}

export interface ConsoleUserOptions {
  hasher: PasswordHasher;
  csrf: CsrfTokens;
  passwordRules: PasswordRules;
  idleMs: number;
  maxAgeMs: number;
  lockoutAfterFailures: number;
  lockoutMs: number;
}

export interface SignIn {
  sessionId: string;
  principal: ConsolePrincipal;
}

function checkPassword(password: string, email: string, rules: PasswordRules): void {
  const reason = weakPasswordReason(password, email, rules);
  if (reason !== null) {
    throw new AppError('password_too_weak', reason, {
      errors: [{ field: 'body/password', message: reason }],
    });
  }
}

export class ConsoleUserService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly options: ConsoleUserOptions,
  ) {}

  private async hash(password: string): Promise<string> {
    try {
      return await this.options.hasher.hash(password);
    } catch (err) {
      if (err instanceof PasswordQueueFull) throw new AppError('too_many_requests');
      throw err;
    }
  }

  /** Audited with the email and role (never the password or its hash). */
  async create(
    input: { email: string; role: ConsoleRole; password: string },
    actor: Actor,
  ): Promise<ConsoleUserRecord> {
    const email = input.email.trim();
    checkPassword(input.password, email, this.options.passwordRules);
    const passwordHash = await this.hash(input.password);
    const now = this.ctx.clock.now();
    return this.ctx.db.transaction().execute(async (trx) => {
      const user = await insertConsoleUser(
        trx,
        { id: newId('consoleUser'), email, role: input.role, passwordHash },
        now,
      );
      if (!user) throw new AppError('console_user_exists');
      await insertAudit(
        trx,
        {
          actor,
          action: 'console_user.created',
          targetId: user.id,
          reason: null,
          details: { email: user.email, role: user.role },
        },
        now,
      );
      return user;
    });
  }

  list(page: { limit: number; after?: string | undefined }): Promise<ConsoleUserRecord[]> {
    return listConsoleUsers(this.ctx.db, page);
  }

  async get(id: string): Promise<ConsoleUserRecord> {
    const user = await findConsoleUser(this.ctx.db, id);
    if (!user) throw new AppError('console_user_not_found');
    return user;
  }

  /**
   * An admin's change: the role, disabling or enabling, a new password. Disabling and a new password
   * end every session of the user at once; a role change applies to the next request of each.
   */
  async update(
    id: string,
    change: {
      role?: ConsoleRole | undefined;
      disabled?: boolean | undefined;
      password?: string | undefined;
      unlock?: boolean | undefined;
    },
    actor: Actor,
  ): Promise<ConsoleUserRecord> {
    const existing = await this.get(id);
    if (change.password !== undefined)
      checkPassword(change.password, existing.email, this.options.passwordRules);
    const passwordHash = change.password !== undefined ? await this.hash(change.password) : undefined;
    const now = this.ctx.clock.now();
    return this.ctx.db.transaction().execute(async (trx) => {
      const before = await findConsoleUser(trx, id, { forUpdate: true });
      if (!before) throw new AppError('console_user_not_found');
      const changes: Record<string, { from: unknown; to: unknown }> = {};
      if (change.role !== undefined && change.role !== before.role)
        changes['role'] = { from: before.role, to: change.role };
      const wasDisabled = before.disabledAt !== null;
      if (change.disabled !== undefined && change.disabled !== wasDisabled)
        changes['disabled'] = { from: wasDisabled, to: change.disabled };
      // Only a lock still in force is worth an audit entry; unlocking an unlocked user changes nothing.
      if (change.unlock === true && before.lockedUntil !== null && before.lockedUntil > now)
        changes['locked_until'] = { from: before.lockedUntil.toISOString(), to: null };
      const after = await updateConsoleUser(
        trx,
        id,
        {
          ...(changes['role'] ? { role: change.role as ConsoleRole } : {}),
          ...(changes['disabled'] ? { disabledAt: change.disabled ? now : null } : {}),
          ...(passwordHash !== undefined ? { passwordHash } : {}),
          ...(change.unlock === true ? { unlock: true } : {}),
        },
        now,
      );
      if (!after) throw new AppError('console_user_not_found');
      if (change.disabled === true || passwordHash !== undefined) await revokeSessionsOf(trx, id, now);
      if (Object.keys(changes).length > 0) {
        await insertAudit(
          trx,
          { actor, action: 'console_user.updated', targetId: id, reason: null, details: { changes } },
          now,
        );
      }
      if (passwordHash !== undefined) {
        await insertAudit(
          trx,
          { actor, action: 'console_user.password_reset', targetId: id, reason: null, details: {} },
          now,
        );
      }
      return after;
    });
  }

  /**
   * Every failure — unknown email, wrong password, disabled or locked user — is the same
   * `sign_in_failed` after the same work (one scrypt), so the answer tells nobody whether the email
   * belongs to a user. A presented session id (`previous`) is never adopted: sign-in always makes a
   * new one and revokes the old, so an id planted in a browser before sign-in stays worthless.
   */
  async signIn(email: string, password: string, previous: string | undefined): Promise<SignIn> {
    const user = await findConsoleUserByEmail(this.ctx.db, email.trim());
    const now = this.ctx.clock.now();
    const locked = user?.lockedUntil != null && user.lockedUntil > now;
    let verdict: { ok: boolean; outdated: boolean };
    try {
      verdict = await this.options.hasher.verify(password, user ? user.passwordHash : null);
    } catch (err) {
      if (err instanceof PasswordQueueFull) throw new AppError('too_many_requests');
      throw err;
    }
    if (!user || user.disabledAt !== null || locked || !verdict.ok) {
      if (user && user.disabledAt === null && !locked) await this.countFailure(user, now);
      throw new AppError('sign_in_failed');
    }
    const rehashed = verdict.outdated ? await this.hash(password) : null;
    const sessionId = newSessionId();
    const sessionHash = hashSessionId(sessionId);
    await this.ctx.db.transaction().execute(async (trx) => {
      await clearFailedSignIns(trx, user.id, rehashed);
      if (previous !== undefined && looksLikeSessionId(previous))
        await revokeSession(trx, hashSessionId(previous), now);
      await deleteDeadSessions(trx, user.id, new Date(now.getTime() - this.options.maxAgeMs));
      await insertSession(trx, { idHash: sessionHash, userId: user.id }, now);
      await insertAudit(
        trx,
        {
          actor: user.id,
          action: 'console_user.signed_in',
          targetId: user.id,
          reason: null,
          details: rehashed ? { password_rehashed: true } : {},
        },
        now,
      );
    });
    return {
      sessionId,
      principal: this.principal(
        { userId: user.id, email: user.email, role: user.role, createdAt: now, lastSeenAt: now },
        sessionId,
      ),
    };
  }

  private async countFailure(user: ConsoleUserRecord, now: Date): Promise<void> {
    await this.ctx.db.transaction().execute(async (trx) => {
      const { locked } = await recordFailedSignIn(
        trx,
        user.id,
        this.options.lockoutAfterFailures,
        new Date(now.getTime() + this.options.lockoutMs),
        now,
      );
      // The actor is whoever typed the password, not the user it named.
      await insertAudit(
        trx,
        {
          actor: 'anonymous',
          action: locked ? 'console_user.locked' : 'console_user.sign_in_failed',
          targetId: user.id,
          reason: null,
          details: {},
        },
        now,
      );
    });
  }

  private principal(
    s: { userId: string; email: string; role: ConsoleRole; createdAt: Date; lastSeenAt: Date },
    sessionId: string,
  ): ConsolePrincipal {
    const idleEnd = s.lastSeenAt.getTime() + this.options.idleMs;
    const absoluteEnd = s.createdAt.getTime() + this.options.maxAgeMs;
    return {
      userId: s.userId,
      email: s.email,
      role: s.role,
      scopes: ROLE_SCOPES[s.role],
      sessionHash: hashSessionId(sessionId),
      csrfToken: this.options.csrf.tokenFor(sessionId),
      expiresAt: new Date(Math.min(idleEnd, absoluteEnd)),
    };
  }

  /** The live session a cookie names, marked as used now; null for anything else. */
  async resolve(sessionId: string): Promise<ConsolePrincipal | null> {
    if (!looksLikeSessionId(sessionId)) return null;
    const now = this.ctx.clock.now();
    const session = await touchSession(
      this.ctx.db,
      hashSessionId(sessionId),
      {
        idleSince: new Date(now.getTime() - this.options.idleMs),
        createdSince: new Date(now.getTime() - this.options.maxAgeMs),
      },
      now,
    );
    return session ? this.principal(session, sessionId) : null;
  }

  csrfMatches(sessionId: string, token: string | undefined): boolean {
    return this.options.csrf.matches(sessionId, token);
  }

  async signOut(principal: ConsolePrincipal): Promise<void> {
    const now = this.ctx.clock.now();
    await this.ctx.db.transaction().execute(async (trx) => {
      if (!(await revokeSession(trx, principal.sessionHash, now))) return;
      await insertAudit(
        trx,
        {
          actor: principal.userId,
          action: 'console_user.signed_out',
          targetId: principal.userId,
          reason: null,
          details: {},
        },
        now,
      );
    });
  }

  /**
   * A person's own change: the current password first (a wrong one counts towards the lockout, so a
   * stolen session cannot guess it), then every other session of theirs ends.
   */
  async changePassword(principal: ConsolePrincipal, current: string, next: string): Promise<void> {
    const user = await this.get(principal.userId);
    const now = this.ctx.clock.now();
    let verdict: { ok: boolean };
    try {
      verdict = await this.options.hasher.verify(current, user.passwordHash);
    } catch (err) {
      if (err instanceof PasswordQueueFull) throw new AppError('too_many_requests');
      throw err;
    }
    if (!verdict.ok) {
      await this.countFailure(user, now);
      throw new AppError('current_password_incorrect');
    }
    checkPassword(next, user.email, this.options.passwordRules);
    const passwordHash = await this.hash(next);
    await this.ctx.db.transaction().execute(async (trx) => {
      await updateConsoleUser(trx, user.id, { passwordHash }, now);
      await revokeSessionsOf(trx, user.id, now, principal.sessionHash);
      await insertAudit(
        trx,
        {
          actor: user.id,
          action: 'console_user.password_changed',
          targetId: user.id,
          reason: null,
          details: {},
        },
        now,
      );
    });
  }
}
