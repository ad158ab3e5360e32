/**
 * Admin: console users (create with a role, change the role, disable, unlock) and API keys (create,
 * showing the secret once; revoke). The routes need the admin scope; the API refuses everyone else.
 */
import { type FormEvent, useState } from 'react';
import { ApiError, api, fieldErrors, need, problemMessage } from '../api.ts';
import { useSession } from '../session.tsx';
import { Empty, ErrorBox, Show, useLoad, when } from '../ui.tsx';

const ROLES = ['marketing', 'fraud', 'on_call', 'finance', 'admin'] as const;
type Role = (typeof ROLES)[number];
const ROLE_LABELS: Record<Role, string> = {
  marketing: 'Marketing',
  fraud: 'Fraud analyst',
  on_call: 'On-call',
  finance: 'Finance',
  admin: 'Admin',
};
const SCOPES = ['admin', 'marketing', 'checkout', 'fraud', 'finance', 'webhooks'] as const;
type Scope = (typeof SCOPES)[number];

const caught = (e: unknown) => (e instanceof ApiError ? e.problem : e);

function loadUsers() {
  return need(api.GET('/v1/console-users', { params: { query: { limit: 200 } } }));
}
type User = Awaited<ReturnType<typeof loadUsers>>['data'][number];

function NewUser({ created }: { created: () => void }) {
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('marketing');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const fields = fieldErrors(error);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const user = await need(api.POST('/v1/console-users', { body: { email, role, password } }));
      setDone(
        `${user.email} can sign in now as ${ROLE_LABELS[user.role]}. Give them the password in person.`,
      );
      setEmail('');
      setPassword('');
      created();
    } catch (e) {
      setError(caught(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="form" onSubmit={submit} aria-labelledby="new-user-title" noValidate>
      <h2 id="new-user-title">New console user</h2>
      <label>
        Email
        <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="off" />
        {fields['body/email'] && <span className="field-error">{fields['body/email']}</span>}
      </label>
      <label>
        Role
        <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {ROLE_LABELS[r]}
            </option>
          ))}
        </select>
      </label>
      <label>
        First password
        <input
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoComplete="new-password"
        />
        {fields['body/password'] && <span className="field-error">{fields['body/password']}</span>}
      </label>
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Creating…' : 'Create user'}
      </button>
      {done && (
        <p className="notice" role="status">
          {done}
        </p>
      )}
      {error !== null && Object.keys(fields).length === 0 && (
        <p className="field-error" role="alert">
          {problemMessage(error)}
        </p>
      )}
    </form>
  );
}

function UserRow({ user, me, changed }: { user: User; me: boolean; changed: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const locked = user.locked_until !== null && Date.parse(user.locked_until) > Date.now();

  async function patch(body: { role?: Role; disabled?: boolean; unlock?: true }) {
    setBusy(true);
    setError(null);
    try {
      await need(api.PATCH('/v1/console-users/{id}', { params: { path: { id: user.id } }, body }));
      changed();
    } catch (e) {
      setError(caught(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <tr data-user={user.email}>
      <td className="details">{user.email}</td>
      <td>
        <select
          aria-label={`Role of ${user.email}`}
          value={user.role}
          disabled={busy || me}
          onChange={(e) => void patch({ role: e.target.value as Role })}
        >
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {ROLE_LABELS[r]}
            </option>
          ))}
        </select>
      </td>
      <td>
        {user.disabled ? (
          <span className="badge badge-ended">disabled</span>
        ) : locked ? (
          <span className="badge badge-paused">locked until {when(user.locked_until)}</span>
        ) : (
          <span className="badge badge-active">active</span>
        )}
      </td>
      <td>{when(user.created_at)}</td>
      <td>
        {me ? (
          <span className="muted">you</span>
        ) : (
          <>
            <button type="button" disabled={busy} onClick={() => void patch({ disabled: !user.disabled })}>
              {user.disabled ? 'Enable' : 'Disable'}
            </button>{' '}
            {locked && (
              <button type="button" disabled={busy} onClick={() => void patch({ unlock: true })}>
                Unlock
              </button>
            )}
          </>
        )}
        {error !== null && (
          <p className="field-error" role="alert">
            {problemMessage(error)}
          </p>
        )}
      </td>
    </tr>
  );
}

export function UsersPage() {
  // An admin cannot disable or demote themselves here: the last admin would lock everyone out.
  const myId = useSession().session?.user.id;
  const [version, setVersion] = useState(0);
  const loaded = useLoad(loadUsers, [version]);
  const changed = () => setVersion((n) => n + 1);
  return (
    <section>
      <div className="page-head">
        <h1>Console users</h1>
      </div>
      <div className="grid-2">
        <Show loaded={loaded}>
          {(page) =>
            page.data.length === 0 ? (
              <Empty>No console user yet.</Empty>
            ) : (
              <table className="list" aria-label="Console users">
                <thead>
                  <tr>
                    <th scope="col">Email</th>
                    <th scope="col">Role</th>
                    <th scope="col">Status</th>
                    <th scope="col">Created</th>
                    <th scope="col">Change</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((u) => (
                    <UserRow key={u.id} user={u} me={u.id === myId} changed={changed} />
                  ))}
                </tbody>
              </table>
            )
          }
        </Show>
        <NewUser created={changed} />
      </div>
    </section>
  );
}

function NewKey({ created }: { created: () => void }) {
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Scope[]>(['checkout']);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [secret, setSecret] = useState<{ name: string; secret: string } | null>(null);
  const fields = fieldErrors(error);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setSecret(null);
    try {
      const key = await need(api.POST('/v1/api-keys', { body: { name, scopes } }));
      setSecret({ name: key.name, secret: key.secret });
      setName('');
      created();
    } catch (e) {
      setError(caught(e));
    } finally {
      setBusy(false);
    }
  }

  const toggle = (scope: Scope) =>
    setScopes((was) => (was.includes(scope) ? was.filter((s) => s !== scope) : [...was, scope]));

  return (
    <form className="form" onSubmit={submit} aria-labelledby="new-key-title" noValidate>
      <h2 id="new-key-title">New API key</h2>
      <label>
        Key name
        <input value={name} onChange={(e) => setName(e.target.value)} maxLength={200} />
        {fields['body/name'] && <span className="field-error">{fields['body/name']}</span>}
      </label>
      <fieldset>
        <legend>Scopes</legend>
        {SCOPES.map((scope) => (
          <label key={scope} className="inline">
            <input type="checkbox" checked={scopes.includes(scope)} onChange={() => toggle(scope)} /> {scope}
          </label>
        ))}
        {fields['body/scopes'] && <span className="field-error">{fields['body/scopes']}</span>}
      </fieldset>
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Creating…' : 'Create key'}
      </button>
      {secret && (
        <div className="notice" role="status">
          <p>
            The secret of <strong>{secret.name}</strong>. Copy it now: it is shown this once and never again.
          </p>
          <p className="secret" data-testid="new-secret">
            {secret.secret}
          </p>
          <button type="button" onClick={() => void navigator.clipboard?.writeText(secret.secret)}>
            Copy secret
          </button>
        </div>
      )}
      {error !== null && Object.keys(fields).length === 0 && (
        <p className="field-error" role="alert">
          {problemMessage(error)}
        </p>
      )}
    </form>
  );
}

export function ApiKeysPage() {
  const [version, setVersion] = useState(0);
  const loaded = useLoad(() => need(api.GET('/v1/api-keys')), [version]);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function revoke(id: string, name: string) {
    setBusy(id);
    setError(null);
    try {
      await need(
        api.POST('/v1/api-keys/{id}/revoke', {
          params: { path: { id } },
          body: { reason: `revoked in the console: ${name}`.slice(0, 500) },
        }),
      );
      setVersion((n) => n + 1);
    } catch (e) {
      setError(caught(e));
    } finally {
      setBusy(null);
    }
  }

  return (
    <section>
      <div className="page-head">
        <h1>API keys</h1>
      </div>
      {error !== null && <ErrorBox error={error} />}
      <div className="grid-2">
        <Show loaded={loaded}>
          {(page) =>
            page.data.length === 0 ? (
              <Empty>No API key yet. Create one for each checkout backend or tool.</Empty>
            ) : (
              <table className="list" aria-label="API keys">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Scopes</th>
                    <th scope="col">Created</th>
                    <th scope="col">Status</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((k) => (
                    <tr key={k.id} data-key={k.name}>
                      <td className="details">
                        {k.name} <span className="mono muted">{k.hint}</span>
                      </td>
                      <td>{k.scopes.join(', ')}</td>
                      <td>{when(k.created_at)}</td>
                      <td>
                        {k.revoked_at ? (
                          <span className="badge badge-ended">revoked {when(k.revoked_at)}</span>
                        ) : (
                          <button
                            type="button"
                            className="danger"
                            disabled={busy !== null}
                            onClick={() => void revoke(k.id, k.name)}
                          >
                            {busy === k.id ? 'Revoking…' : 'Revoke'}
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </Show>
        <NewKey created={() => setVersion((n) => n + 1)} />
      </div>
    </section>
  );
}
