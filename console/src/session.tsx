/** The signed-in person: read from GET /v1/session, kept in context, cleared when the API says it is over. */
import { createContext, type ReactNode, useCallback, useContext, useEffect, useState } from 'react';
import { api, onUnauthorized, type Schema, setCsrfToken } from './api.ts';

type SessionInfo = {
  user: { id: string; email: string; role: 'marketing' | 'fraud' | 'on_call' | 'finance' | 'admin' };
  scopes: string[];
  csrf_token: string;
  expires_at: string;
};

export type Scope = 'marketing' | 'fraud' | 'finance' | 'admin';

interface SessionState {
  session: SessionInfo | null;
  /** Why the person is looking at the sign-in form, when they did not choose to. */
  notice: string | null;
  signedIn: (session: SessionInfo) => void;
  signOut: () => Promise<void>;
}

const Context = createContext<SessionState | null>(null);

export function useSession(): SessionState {
  const state = useContext(Context);
  if (!state) throw new Error('useSession outside SessionProvider');
  return state;
}

/** Whether the role's scopes pass a route that needs `scope` (admin passes every check). */
export function allows(session: SessionInfo | null, scope: Scope): boolean {
  if (!session) return false;
  return session.scopes.includes('admin') || session.scopes.includes(scope);
}

export function SessionProvider({ children }: { children: (loading: boolean) => ReactNode }) {
  const [session, setSession] = useState<SessionInfo | null>(null);
  const [loading, setLoading] = useState(true);
  const [notice, setNotice] = useState<string | null>(null);

  const signedIn = useCallback((next: SessionInfo) => {
    setCsrfToken(next.csrf_token);
    setNotice(null);
    setSession(next);
  }, []);

  useEffect(() => {
    onUnauthorized(() => {
      setCsrfToken(null);
      setSession((was) => {
        if (was) setNotice('Your session ended. Sign in again to go on.');
        return null;
      });
    });
    api.GET('/v1/session').then(
      ({ data }) => {
        if (data) signedIn(data as SessionInfo);
        setLoading(false);
      },
      () => setLoading(false),
    );
  }, [signedIn]);

  const signOut = useCallback(async () => {
    await api.DELETE('/v1/session');
    setCsrfToken(null);
    setNotice('You signed out.');
    setSession(null);
  }, []);

  return (
    <Context.Provider value={{ session, notice, signedIn, signOut }}>{children(loading)}</Context.Provider>
  );
}

export type { Schema, SessionInfo };
