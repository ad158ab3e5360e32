/** The console shell: sign-in, the navigation the role may use, and the page the path names. */
import type { ReactNode } from 'react';
import { ApiKeysPage, UsersPage } from './pages/admin.tsx';
import { ApprovalsPage } from './pages/approvals.tsx';
import { AuditPage } from './pages/audit.tsx';
import { CampaignDetail, CampaignEdit, CampaignList, CampaignNew } from './pages/campaigns.tsx';
import { FinancePage } from './pages/finance.tsx';
import { ListsPage } from './pages/lists.tsx';
import { OnCallPage } from './pages/on-call.tsx';
import { ReviewsPage } from './pages/reviews.tsx';
import { RulesPage } from './pages/rules.tsx';
import { SignIn } from './pages/sign-in.tsx';
import { Link, match, navigate, usePath } from './router.tsx';
import { allows, type Scope, SessionProvider, useSession } from './session.tsx';
import { Spinner } from './ui.tsx';

interface Page {
  path: string;
  /** In the navigation under this label; pages without one are reached from others. */
  nav?: string;
  scope: Scope;
  render: (params: Record<string, string>) => ReactNode;
}

const PAGES: Page[] = [
  { path: '/campaigns', nav: 'Campaigns', scope: 'marketing', render: () => <CampaignList /> },
  { path: '/campaigns/new', scope: 'marketing', render: () => <CampaignNew /> },
  { path: '/campaigns/:id', scope: 'marketing', render: (p) => <CampaignDetail id={p.id as string} /> },
  { path: '/campaigns/:id/edit', scope: 'marketing', render: (p) => <CampaignEdit id={p.id as string} /> },
  { path: '/approvals', nav: 'Approvals', scope: 'marketing', render: () => <ApprovalsPage /> },
  { path: '/on-call', nav: 'On-call', scope: 'fraud', render: () => <OnCallPage /> },
  { path: '/reviews', nav: 'Review queue', scope: 'fraud', render: () => <ReviewsPage /> },
  { path: '/rules', nav: 'Rules', scope: 'fraud', render: () => <RulesPage /> },
  { path: '/lists', nav: 'Lists', scope: 'fraud', render: () => <ListsPage /> },
  { path: '/finance', nav: 'Finance', scope: 'finance', render: () => <FinancePage /> },
  { path: '/audit', nav: 'Audit log', scope: 'fraud', render: () => <AuditPage /> },
  { path: '/admin/users', nav: 'Users', scope: 'admin', render: () => <UsersPage /> },
  { path: '/admin/api-keys', nav: 'API keys', scope: 'admin', render: () => <ApiKeysPage /> },
];

const ROLE_NAMES = {
  marketing: 'Marketing',
  fraud: 'Fraud analyst',
  on_call: 'On-call',
  finance: 'Finance',
  admin: 'Admin',
} as const;

function Shell() {
  const { session, signOut } = useSession();
  const path = usePath();
  if (!session) return <SignIn />;

  const mine = PAGES.filter((page) => allows(session, page.scope));
  const home = mine.find((page) => page.nav);
  if (path === '/' && home) {
    queueMicrotask(() => navigate(home.path, true));
    return <Spinner />;
  }

  let content: ReactNode = (
    <div className="empty">
      <h1>Page not found</h1>
      <p>
        There is no console page at this address. <Link to="/">Go to the start page</Link>.
      </p>
    </div>
  );
  for (const page of PAGES) {
    const params = match(page.path, path);
    if (!params) continue;
    content = allows(session, page.scope) ? (
      page.render(params)
    ) : (
      <div className="empty" role="alert">
        <h1>Not for your role</h1>
        <p>
          This page needs the {page.scope} scope; your role ({ROLE_NAMES[session.user.role]}) does not hold
          it. Ask an admin if you need it.
        </p>
      </div>
    );
    break;
  }

  return (
    <div className="shell">
      <header className="top">
        <span className="brand">Promoguard</span>
        <nav aria-label="Main">
          <ul>
            {mine
              .filter((page) => page.nav)
              .map((page) => (
                <li key={page.path}>
                  <Link
                    to={page.path}
                    aria-current={path === page.path || path.startsWith(`${page.path}/`) ? 'page' : undefined}
                  >
                    {page.nav}
                  </Link>
                </li>
              ))}
          </ul>
        </nav>
        <span className="who">
          <span>{session.user.email}</span>
          <span className="role">{ROLE_NAMES[session.user.role]}</span>
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </span>
      </header>
      <main className="content">{content}</main>
    </div>
  );
}

export function App() {
  return (
    <SessionProvider>{(loading) => (loading ? <Spinner label="Starting…" /> : <Shell />)}</SessionProvider>
  );
}
