/**
 * The HTTP server: authentication and a customer token's ownership, request ids, problem answers,
 * the served OpenAPI document, and every resource module of src/http/routes under /v1.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import type { App } from '../app.js';
import { corsOrigins, trustProxySetting } from '../config.js';
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { type CustomerClaims, CustomerTokens } from '../security/customer-tokens.js';
import { hasScope, type Scope } from '../services/api-keys.js';
import type { ConsolePrincipal } from '../services/console-users.js';
import type { ApiKeyRecord } from '../store/api-keys.js';
import { answerNodeLevelRequests, clientErrorHandler } from './connection-errors.js';
import { CSRF_HEADER, fromOwnOrigin, readSessionCookie, UNSAFE_METHODS } from './console-session.js';
import { consoleStatic } from './console-static.js';
import { registerStorefrontCors } from './cors.js';
import { useBoundedJsonParser } from './json-body.js';
import { documentObject, documentRoute } from './openapi.js';
import { errorHandler, findUnstorableText, sendProblem } from './problem.js';
import { alertRoutes } from './routes/alerts.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { approvalRoutes } from './routes/approvals.js';
import { auditRoutes } from './routes/audit.js';
import { campaignRoutes } from './routes/campaigns.js';
import { codeRoutes } from './routes/codes.js';
import { consoleUserRoutes } from './routes/console-users.js';
import { controlRoutes } from './routes/controls.js';
import { decisionRoutes } from './routes/decisions.js';
import { financeRoutes } from './routes/finance.js';
import { healthRoutes } from './routes/health.js';
import { insightRoutes } from './routes/insights.js';
import { listRoutes } from './routes/lists.js';
import { loyaltyRoutes } from './routes/loyalty.js';
import { metricsRoutes } from './routes/metrics.js';
import { modelRoutes } from './routes/models.js';
import { outcomeRoutes } from './routes/outcomes.js';
import { reconciliationRoutes } from './routes/reconciliations.js';
import { redemptionRoutes } from './routes/redemptions.js';
import { remediationRoutes } from './routes/remediations.js';
import { reviewRoutes } from './routes/reviews.js';
import { ruleRoutes } from './routes/rules.js';
import { sessionRoutes } from './routes/session.js';
import { webhookRoutes } from './routes/webhooks.js';
import { validatorCompiler } from './shared.js';

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKeyRecord | null;
    /** Set when the caller is a storefront holding a customer token. */
    customer: CustomerClaims | null;
    /** Set when the caller is a person signed in to the console (a session cookie). */
    consoleUser: ConsolePrincipal | null;
  }
  interface FastifyContextConfig {
    /** The route needs a key holding any one of these scopes (admin holds all). */
    scopes?: Scope[];
    /**
     * A customer token may call the route too, for its own customer only: the one the `:id` path
     * parameter (`path`) or `customer.id` in the body (`body`) names.
     */
    customer?: 'path' | 'body';
    /** The route is about the caller's own console session: it needs one, and no scope. */
    session?: true;
  }
}

const csrfHeader = (request: FastifyRequest) => {
  const value = request.headers[CSRF_HEADER];
  return typeof value === 'string' ? value : undefined;
};

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const NOT_YOURS = 'a customer token acts only on its own customer';

export interface ServerOptions {
  logger?: boolean | object;
  /** The built console's folder (tests); otherwise CONSOLE_DIR or dist/console. */
  consoleDir?: string;
}

export const API_VERSION = '0.1.0';

export async function buildServer(app: App, options: ServerOptions = {}): Promise<FastifyInstance> {
  const { config } = app;
  const server: FastifyInstance = Fastify({
    logger: options.logger ?? {
      level: app.config.LOG_LEVEL,
      redact: ['req.headers.authorization', 'req.headers.cookie', `req.headers["${CSRF_HEADER}"]`],
    },
    bodyLimit: app.config.BODY_LIMIT_BYTES,
    // A slow client holds a connection only so long: its request line and headers, then the whole
    // request, must arrive in time; an idle keep-alive connection or one nothing moves on is closed.
    http: {
      maxHeaderSize: config.HTTP_MAX_HEADER_BYTES,
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      // Node looks for expired requests this often (30 s by default, longer than the timeouts themselves).
      connectionsCheckingInterval: Math.min(500, Math.ceil(config.HTTP_HEADERS_TIMEOUT_MS / 4)),
      // A missing Host is refused below as a problem document, not with Node's bare 400.
      requireHostHeader: false,
    },
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    connectionTimeout: config.HTTP_IDLE_TIMEOUT_MS,
    clientErrorHandler: clientErrorHandler(
      { maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES, requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS },
      () => server.log,
    ),
    // A code may be sent with separators: up to 256 characters, percent-encoded up to 3 bytes each.
    routerOptions: { maxParamLength: 1024 },
    // Router errors (bad URL, too-long parameter) reach neither setErrorHandler nor onSend hooks.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id);
      return errorHandler(error, request, reply);
    },
    trustProxy: trustProxySetting(app.config.TRUST_PROXY),
    // A caller's X-Request-Id is kept only if it is short and plain, so it cannot forge log lines.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : newId('request');
    },
    // Per-request lines only at debug: on a busy checkout path they would outweigh the work they log.
    logController: new LogController({
      disableRequestLogging: app.config.LOG_LEVEL !== 'debug' && app.config.LOG_LEVEL !== 'trace',
    }),
  });
  answerNodeLevelRequests(server.server);
  server.setValidatorCompiler(validatorCompiler);
  server.decorateRequest('apiKey', null);
  server.decorateRequest('customer', null);
  server.decorateRequest('consoleUser', null);
  server.removeContentTypeParser(['text/plain']);
  useBoundedJsonParser(server, config.JSON_MAX_DEPTH);
  server.setErrorHandler(errorHandler);
  server.setNotFoundHandler((request, reply) => sendProblem(reply, request, 'not_found'));
  // No body at all reads as `{}`: optional-body routes (pause, rollback) then need none, and
  // required-body routes name the missing fields instead of "body must be object".
  server.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.method !== 'GET' && request.method !== 'HEAD')
      request.body = {};
    // PostgreSQL text and jsonb cannot hold U+0000 or an unpaired surrogate: a 400 here, not a failed statement.
    const field = findUnstorableText(request.body, 'body');
    if (field !== null) {
      throw new AppError('validation_failed', `${field} contains U+0000 or an unpaired surrogate`, {
        errors: [{ field, message: 'must not contain U+0000 or an unpaired surrogate' }],
      });
    }
  });
  server.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // RED per route: the route's template, never its parameters (a code or a customer id in a label
  // would leak them and grow the series without bound); unmatched paths share one label.
  server.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const method = request.method;
    app.metrics.inc('promoguard_http_requests_total', { method, route, status: String(reply.statusCode) });
    app.metrics.observe(
      'promoguard_http_request_duration_seconds',
      { method, route },
      reply.elapsedTime / 1000,
    );
  });

  // RFC 9112 3.2: an HTTP/1.1 request without Host is refused (here, so that it is a problem document).
  server.addHook('onRequest', async (request, reply) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      reply.header('connection', 'close');
      throw new AppError('malformed_request', 'an HTTP/1.1 request needs a Host header');
    }
  });
  // Before authentication, so that a browser can read a storefront route's 401 too.
  await registerStorefrontCors(server, corsOrigins(config.CORS_ORIGINS));

  // Authentication runs in onRequest, before the body is even parsed: an anonymous caller
  // learns nothing from validation errors.
  server.addHook('onRequest', async (request: FastifyRequest, reply) => {
    const { scopes, customer, session } = request.routeOptions.config;
    if (!scopes && !session) return;
    const header = request.headers.authorization;
    // A person in the console: the session cookie, when no Authorization header says otherwise. The
    // role's scopes pass the same check an API key's do, so every route serves a session alike.
    const sessionId = header === undefined ? readSessionCookie(config, request) : undefined;
    if (sessionId !== undefined) {
      // Judged before the session is even looked up: a forged request must not refresh its idle time.
      if (
        UNSAFE_METHODS.has(request.method) &&
        (!fromOwnOrigin(request) || !app.consoleUsers.csrfMatches(sessionId, csrfHeader(request)))
      ) {
        throw new AppError('csrf_failed');
      }
      const principal = await app.consoleUsers.resolve(sessionId);
      if (!principal)
        throw new AppError('unauthorized', 'the console session is over or unknown; sign in again');
      if (scopes && !scopes.some((scope) => hasScope(principal.scopes, scope))) {
        throw new AppError('forbidden', `this route needs one of the scopes: ${scopes.join(', ')}`);
      }
      request.consoleUser = principal;
      return;
    }
    if (!scopes) throw new AppError('unauthorized', 'this route needs a console session');
    const match = typeof header === 'string' ? /^Bearer ([\x21-\x7e]{1,1024})$/i.exec(header) : null;
    const credential = match?.[1];
    if (credential && CustomerTokens.looksLikeToken(credential)) {
      const claims = app.customerTokens.verify(credential);
      if (!claims) {
        reply.header('www-authenticate', 'Bearer');
        throw new AppError('unauthorized');
      }
      if (!customer) throw new AppError('forbidden', NOT_YOURS);
      request.customer = claims;
      return;
    }
    const key = credential ? await app.apiKeys.verify(credential) : null;
    if (!key) {
      reply.header('www-authenticate', 'Bearer');
      throw new AppError('unauthorized');
    }
    if (!scopes.some((scope) => hasScope(key.scopes, scope))) {
      throw new AppError('forbidden', `this route needs one of the scopes: ${scopes.join(', ')}`);
    }
    request.apiKey = key;
  });

  // A token acts only for its own customer: judged here alone, after validation, on the very path or
  // body the handler will act on.
  server.addHook('preHandler', async (request: FastifyRequest) => {
    const claims = request.customer;
    if (!claims) return;
    const named =
      request.routeOptions.config.customer === 'path'
        ? (request.params as { id?: unknown }).id
        : (request.body as { customer?: { id?: unknown } }).customer?.id;
    if (named !== claims.customerId) throw new AppError('forbidden', NOT_YOURS);
  });

  await server.register(swagger, {
    transform: documentRoute,
    transformObject: documentObject,
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Promoguard API',
        version: API_VERSION,
        description:
          'Issue, validate and redeem coupons. Amounts are integers in minor units; times are UTC. ' +
          'Errors are application/problem+json with a stable `code`.',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'pgk_… API key' },
          consoleSession: {
            type: 'apiKey',
            in: 'cookie',
            name: 'pg_session',
            description:
              'A console session (`__Host-pg_session` over TLS); requests that change something also need the X-CSRF-Token header',
          },
        },
      },
      security: [{ apiKey: [] }, { consoleSession: [] }],
      tags: [
        {
          name: 'campaigns',
          description:
            'Campaigns and their lifecycle (scope marketing; reading them and pause/resume also fraud)',
        },
        { name: 'codes', description: 'Codes of a campaign (scope marketing)' },
        {
          name: 'checkout',
          description:
            'Validation, redemption and rollback (scope checkout; reads also marketing; validation also a customer token)',
        },
        {
          name: 'loyalty',
          description:
            'Points, conversions into coupons and the customer wallet (scope checkout, or a customer token for its own customer)',
        },
        {
          name: 'defenses',
          description:
            'Block and allow lists, linked accounts, bulk revocation, throttles, partner caps (scope fraud; some marketing)',
        },
        { name: 'risk', description: 'Rules, backtests, reviews and decisions (scope fraud)' },
        { name: 'finance', description: 'Reconciliation reports and their CSV export (scope finance)' },
        { name: 'admin', description: 'API keys (scope admin) and the audit trail (scope fraud)' },
        {
          name: 'console',
          description:
            'Console sign-in, the session, and console users (scope admin; your own password: any session)',
        },
        {
          name: 'approvals',
          description:
            'Two-person approval of risky campaign changes (scope marketing; never the requesting key)',
        },
        {
          name: 'webhooks',
          description: 'Webhook endpoints, their delivery log and redelivery (scope webhooks)',
        },
        {
          name: 'remediation',
          description: 'Remediation policies and the remediations they applied: list, lift (scope fraud)',
        },
        { name: 'health', description: 'Liveness and readiness' },
      ],
    },
  });
  await server.register(swaggerUi, { routePrefix: '/docs' });
  server.get('/openapi.json', { schema: { hide: true } }, async () => server.swagger());

  await server.register(healthRoutes(app));
  await server.register(metricsRoutes(app));
  for (const routes of [
    campaignRoutes,
    codeRoutes,
    redemptionRoutes,
    loyaltyRoutes,
    apiKeyRoutes,
    listRoutes,
    controlRoutes,
    ruleRoutes,
    modelRoutes,
    reviewRoutes,
    decisionRoutes,
    approvalRoutes,
    auditRoutes,
    reconciliationRoutes,
    financeRoutes,
    outcomeRoutes,
    webhookRoutes,
    remediationRoutes,
    alertRoutes,
    sessionRoutes,
    consoleUserRoutes,
    insightRoutes,
  ]) {
    await server.register(routes(app), { prefix: '/v1' });
  }
  await server.register(consoleStatic(app, options.consoleDir));
  return server;
}
