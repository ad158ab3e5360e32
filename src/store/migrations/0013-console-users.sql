-- People who sign in to the console. A role names the API scopes a person holds (services/console-users.ts);
-- the password is a PHC string (`$scrypt$ln=…,r=…,p=…$salt$hash`) that carries its own parameters, so
-- they can be raised and old hashes still verify (and are re-hashed at the next sign-in).
CREATE TABLE console_users (
  id text PRIMARY KEY,
  email text NOT NULL,
  role text NOT NULL CHECK (role IN ('marketing', 'fraud', 'on_call', 'finance', 'admin')),
  password_hash text NOT NULL,
  -- Failed sign-ins since the last success or lock; a lock resets it, so each lock needs N new failures.
  failed_sign_ins integer NOT NULL DEFAULT 0 CHECK (failed_sign_ins >= 0),
  locked_until timestamptz,
  disabled_at timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

-- Emails are matched case-insensitively: `Ann@x` and `ann@x` are one person, never two accounts.
CREATE UNIQUE INDEX console_users_email_idx ON console_users (lower(email));

-- A signed-in browser. Only the SHA-256 of the session id is kept: a read of this table (a backup, a
-- replica) yields nothing that signs anyone in. `last_seen_at` drives the idle timeout, `created_at`
-- the absolute one.
CREATE TABLE console_sessions (
  id_hash text PRIMARY KEY,
  user_id text NOT NULL REFERENCES console_users (id),
  created_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  revoked_at timestamptz
);

CREATE INDEX console_sessions_user_idx ON console_sessions (user_id);
