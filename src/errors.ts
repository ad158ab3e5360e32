/**
 * The closed list of error codes the API returns, each with its HTTP status. Clients branch on `code`;
 * the texts are for people. An error that is not on this list is a bug: it is logged with its detail
 * and answered with a generic `internal_error`, never with its own message.
 */
export const ERROR_CODES = {
  validation_failed: { status: 400, title: 'The request is not valid' },
  rule_invalid: { status: 400, title: 'The rule expression does not type-check' },
  idempotency_key_required: { status: 400, title: 'An Idempotency-Key header is required' },
  malformed_request: { status: 400, title: 'The request is not well-formed HTTP' },
  unauthorized: { status: 401, title: 'A valid API key or console session is required' },
  sign_in_failed: {
    status: 401,
    title: 'The email or password is wrong, or the user is locked for a while after failed sign-ins',
  },
  forbidden: { status: 403, title: 'The API key or role lacks the scope this route needs' },
  csrf_failed: {
    status: 403,
    title: 'A console request that changes something needs its CSRF token and must come from the console',
  },
  not_found: { status: 404, title: 'No such route' },
  campaign_not_found: { status: 404, title: 'No such campaign' },
  code_not_found: { status: 404, title: 'No such code' },
  redemption_not_found: { status: 404, title: 'No such redemption' },
  points_program_not_found: { status: 404, title: 'No such points program' },
  api_key_not_found: { status: 404, title: 'No such API key' },
  list_entry_not_found: { status: 404, title: 'No such list entry' },
  rule_not_found: { status: 404, title: 'No such rule' },
  decision_not_found: { status: 404, title: 'No such decision' },
  model_not_found: { status: 404, title: 'No such score model' },
  request_timeout: { status: 408, title: 'The request did not arrive in time' },
  approval_not_found: { status: 404, title: 'No such approval' },
  person_not_found: { status: 404, title: 'No such person' },
  reconciliation_not_found: { status: 404, title: 'No such reconciliation' },
  webhook_not_found: { status: 404, title: 'No such webhook endpoint' },
  webhook_delivery_not_found: { status: 404, title: 'No such webhook delivery' },
  console_user_not_found: { status: 404, title: 'No such console user' },
  remediation_policy_not_found: { status: 404, title: 'No such remediation policy' },
  remediation_not_found: { status: 404, title: 'No such remediation' },
  alert_not_found: { status: 404, title: 'No such alert' },
  console_not_built: { status: 404, title: 'The console is not built: run `npm run build`' },
  invalid_status_transition: { status: 409, title: 'The campaign cannot move to that status' },
  code_already_exists: { status: 409, title: 'A code with that text already exists' },
  code_conflicts_with_pattern: { status: 409, title: 'The code has the shape of a generated batch' },
  campaign_not_editable: { status: 409, title: 'An ended campaign cannot be changed' },
  not_under_review: { status: 409, title: 'The redemption was never held for review' },
  review_already_decided: { status: 409, title: 'The review was already decided the other way' },
  review_locked: {
    status: 409,
    title: 'Another analyst holds this case; it is theirs to decide until their lock expires',
  },
  review_closed: { status: 409, title: 'The review was already decided; the case is closed' },
  self_approval_forbidden: { status: 409, title: 'A change needs the approval of a different key' },
  approval_already_decided: { status: 409, title: 'The approval was already decided' },
  approval_expired: { status: 409, title: 'The approval expired before it was decided' },
  approval_stale: { status: 409, title: 'The campaign changed since the approval was requested' },
  reconciliation_running: { status: 409, title: 'A reconciliation is already running' },
  alert_resolved: { status: 409, title: 'The alert is resolved and can no longer be acknowledged' },
  console_user_exists: { status: 409, title: 'A console user with that email already exists' },
  model_training_conflict: { status: 409, title: 'Another model was stored at the same time; retry' },
  model_already_enforcing: { status: 409, title: 'That model is already the enforcing one' },
  remediation_not_active: { status: 409, title: 'The remediation was already lifted or expired' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'Send application/json' },
  idempotency_key_reused: { status: 422, title: 'The Idempotency-Key was used with a different request' },
  webhook_url_refused: {
    status: 422,
    title: 'The webhook URL is not allowed (scheme, or an address that is private, local or unresolvable)',
  },
  redemption_refused: { status: 422, title: 'This code cannot be used' },
  remediation_policy_invalid: { status: 422, title: 'The remediation policy is not valid' },
  insufficient_points: { status: 422, title: 'The points balance is too low' },
  conversion_below_minimum: { status: 422, title: 'Fewer points than the smallest conversion' },
  conversion_not_in_steps: { status: 422, title: 'Points must be converted in whole steps' },
  conversion_above_maximum: { status: 422, title: 'More points than one conversion may take' },
  daily_conversion_limit_exceeded: { status: 422, title: 'This conversion would pass the daily limit' },
  unknown_tier: { status: 422, title: 'The points program defines no such tier' },
  not_enough_labels: {
    status: 422,
    title: 'Too few labeled decisions (of both labels) in the period to train a model',
  },
  model_format_unsupported: { status: 422, title: 'The model is of a format this version cannot read' },
  blocked_by_rule: { status: 422, title: 'A risk rule refused this loyalty operation' },
  points_program_inactive: {
    status: 422,
    title: "The program's campaign is paused, ended or outside its window",
  },
  password_too_weak: { status: 422, title: 'The password is too weak' },
  current_password_incorrect: { status: 422, title: 'The current password is wrong' },
  challenge_required: { status: 428, title: 'A step-up verification is required' },
  too_many_requests: { status: 429, title: 'Too many requests' },
  request_header_too_large: { status: 431, title: 'The request line or headers are too large' },
  internal_error: { status: 500, title: 'Internal error' },
  not_ready: { status: 503, title: 'The service is not ready' },
  database_unavailable: { status: 503, title: 'The database is unavailable; retry shortly' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An expected failure with a stable code; `detail` must be safe to show the caller. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly extensions: Record<string, unknown>;

  constructor(code: ErrorCode, detail?: string, extensions: Record<string, unknown> = {}) {
    super(detail ?? ERROR_CODES[code].title);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.detail = detail;
    this.extensions = extensions;
  }
}
