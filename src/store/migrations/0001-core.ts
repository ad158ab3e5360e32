/**
 * The core schema. Every cap is a counter column changed only by one conditional statement, and the
 * redemption and its rollback are each one PL/pgSQL call: one database round trip, with every row
 * lock taken and released inside it, so no lock is ever held while the application awaits anything.
 */
import { type Kysely, sql } from 'kysely';

const statements = [
  `CREATE TABLE api_keys (
    id text PRIMARY KEY,
    name text NOT NULL,
    key_hash text NOT NULL UNIQUE,
    key_hint text NOT NULL,
    scopes text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
  )`,
  `CREATE TABLE campaigns (
    id text PRIMARY KEY,
    name text NOT NULL,
    status text NOT NULL CHECK (status IN ('draft', 'active', 'paused', 'ended')),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    discount_type text NOT NULL CHECK (discount_type IN ('fixed_amount', 'percentage', 'free_shipping')),
    amount_minor bigint CHECK (amount_minor >= 0),
    percent_bp integer CHECK (percent_bp BETWEEN 1 AND 10000),
    max_discount_minor bigint CHECK (max_discount_minor >= 0),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz CHECK (ends_at > starts_at),
    redemption_cap integer CHECK (redemption_cap >= 0),
    redemptions_used integer NOT NULL DEFAULT 0 CHECK (redemptions_used >= 0),
    budget_minor bigint CHECK (budget_minor >= 0),
    spent_minor bigint NOT NULL DEFAULT 0 CHECK (spent_minor >= 0),
    per_customer_cap integer CHECK (per_customer_cap >= 1),
    min_order_minor bigint CHECK (min_order_minor >= 0),
    eligibility jsonb NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  )`,
  'CREATE INDEX campaigns_created_idx ON campaigns (id DESC)',
  `CREATE TABLE code_batches (
    id text PRIMARY KEY,
    campaign_id text NOT NULL REFERENCES campaigns (id),
    prefix text NOT NULL,
    random_length integer NOT NULL,
    requested integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE TABLE codes (
    id text PRIMARY KEY,
    campaign_id text NOT NULL REFERENCES campaigns (id),
    batch_id text REFERENCES code_batches (id),
    code text NOT NULL,
    normalized text NOT NULL UNIQUE,
    kind text NOT NULL CHECK (kind IN ('public', 'unique')),
    max_uses integer CHECK (max_uses >= 1),
    uses integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
    customer_id text,
    amount_minor bigint CHECK (amount_minor >= 0),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
  )`,
  'CREATE INDEX codes_campaign_idx ON codes (campaign_id, id)',
  `CREATE TABLE customer_usage (
    campaign_id text NOT NULL REFERENCES campaigns (id),
    customer_id text NOT NULL,
    uses integer NOT NULL CHECK (uses >= 0),
    PRIMARY KEY (campaign_id, customer_id)
  )`,
  `CREATE TABLE redemptions (
    id text PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    request_fingerprint text NOT NULL,
    campaign_id text NOT NULL REFERENCES campaigns (id),
    code_id text NOT NULL REFERENCES codes (id),
    customer_id text NOT NULL,
    order_id text,
    currency text NOT NULL,
    subtotal_minor bigint NOT NULL,
    discount_minor bigint NOT NULL CHECK (discount_minor >= 0),
    status text NOT NULL CHECK (status IN ('redeemed', 'rolled_back')),
    created_at timestamptz NOT NULL DEFAULT now(),
    rolled_back_at timestamptz,
    rollback_reason text
  )`,
  'CREATE INDEX redemptions_campaign_idx ON redemptions (campaign_id, id DESC)',
  'CREATE INDEX redemptions_customer_idx ON redemptions (customer_id, id DESC)',
  `CREATE TABLE ledger_entries (
    id bigserial PRIMARY KEY,
    redemption_id text NOT NULL REFERENCES redemptions (id),
    campaign_id text NOT NULL,
    account text NOT NULL CHECK (account IN ('promo_expense', 'campaign_budget')),
    amount_minor bigint NOT NULL,
    currency text NOT NULL,
    entry_type text NOT NULL CHECK (entry_type IN ('redemption', 'reversal')),
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  'CREATE INDEX ledger_entries_campaign_idx ON ledger_entries (campaign_id, account)',
  // The ledger is append-only: a correction is a new (reversal) entry, never an edit.
  `CREATE FUNCTION promoguard_ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    RAISE EXCEPTION 'ledger entries are immutable; write a reversal entry instead';
  END $fn$`,
  `CREATE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION promoguard_ledger_immutable()`,
  `CREATE TABLE outbox (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    type text NOT NULL,
    aggregate_id text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    published_at timestamptz
  )`,
  'CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL',
  `CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    actor text NOT NULL,
    action text NOT NULL,
    target_id text NOT NULL,
    reason text,
    details jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  'CREATE INDEX audit_log_target_idx ON audit_log (target_id, id DESC)',

  /*
   * Redeem. Order of locks: the new redemption row (its idempotency key), the code, the campaign, the
   * customer's usage row — the same order the rollback uses, so the two never deadlock.
   * Each cap is a conditional UPDATE/UPSERT; the first one that finds no room raises PGREF, which
   * rolls back everything done inside the inner block (the claim of the key included) and returns the
   * refusal as a value. A repeat of a committed key returns the stored redemption and changes nothing;
   * a concurrent repeat waits on the unique index until the first commits.
   */
  `CREATE FUNCTION promoguard_redeem(
    p_id text, p_event_id text, p_idempotency_key text, p_fingerprint text,
    p_code_id text, p_campaign_id text, p_campaign_version integer,
    p_customer_id text, p_order_id text, p_currency text,
    p_subtotal_minor bigint, p_discount_minor bigint, p_now timestamptz
  ) RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    v_redemption redemptions%ROWTYPE;
    v_campaign campaigns%ROWTYPE;
    v_code codes%ROWTYPE;
  BEGIN
    BEGIN
      INSERT INTO redemptions (id, idempotency_key, request_fingerprint, campaign_id, code_id, customer_id,
                               order_id, currency, subtotal_minor, discount_minor, status, created_at)
      VALUES (p_id, p_idempotency_key, p_fingerprint, p_campaign_id, p_code_id, p_customer_id,
              p_order_id, p_currency, p_subtotal_minor, p_discount_minor, 'redeemed', p_now)
      ON CONFLICT (idempotency_key) DO NOTHING
      RETURNING * INTO v_redemption;
      IF NOT FOUND THEN
        SELECT * INTO v_redemption FROM redemptions WHERE idempotency_key = p_idempotency_key;
        RETURN jsonb_build_object('outcome', 'replayed', 'redemption', to_jsonb(v_redemption));
      END IF;

      UPDATE codes SET uses = uses + 1
       WHERE id = p_code_id AND status = 'active' AND (max_uses IS NULL OR uses < max_uses);
      IF NOT FOUND THEN
        SELECT * INTO v_code FROM codes WHERE id = p_code_id;
        RAISE EXCEPTION USING ERRCODE = 'PGREF',
          MESSAGE = CASE WHEN v_code.status = 'revoked' THEN 'code_revoked' ELSE 'code_used_up' END;
      END IF;

      UPDATE campaigns
         SET redemptions_used = redemptions_used + 1, spent_minor = spent_minor + p_discount_minor
       WHERE id = p_campaign_id AND version = p_campaign_version AND status = 'active'
         AND starts_at <= p_now AND (ends_at IS NULL OR p_now < ends_at)
         AND (redemption_cap IS NULL OR redemptions_used < redemption_cap)
         AND (budget_minor IS NULL OR spent_minor + p_discount_minor <= budget_minor)
      RETURNING * INTO v_campaign;
      IF NOT FOUND THEN
        SELECT * INTO v_campaign FROM campaigns WHERE id = p_campaign_id;
        RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = CASE
          WHEN v_campaign.status = 'paused' THEN 'campaign_paused'
          WHEN v_campaign.status = 'ended' THEN 'campaign_ended'
          WHEN v_campaign.status <> 'active' THEN 'campaign_not_active'
          WHEN v_campaign.version <> p_campaign_version THEN 'campaign_changed'
          WHEN p_now < v_campaign.starts_at THEN 'campaign_not_started'
          WHEN v_campaign.ends_at IS NOT NULL AND p_now >= v_campaign.ends_at THEN 'campaign_expired'
          WHEN v_campaign.redemption_cap IS NOT NULL
               AND v_campaign.redemptions_used >= v_campaign.redemption_cap THEN 'campaign_cap_reached'
          ELSE 'budget_exhausted' END;
      END IF;

      INSERT INTO customer_usage AS u (campaign_id, customer_id, uses)
      VALUES (p_campaign_id, p_customer_id, 1)
      ON CONFLICT (campaign_id, customer_id) DO UPDATE SET uses = u.uses + 1
        WHERE v_campaign.per_customer_cap IS NULL OR u.uses < v_campaign.per_customer_cap;
      IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'customer_cap_reached';
      END IF;

      INSERT INTO ledger_entries (redemption_id, campaign_id, account, amount_minor, currency, entry_type, created_at)
      VALUES (p_id, p_campaign_id, 'promo_expense', p_discount_minor, p_currency, 'redemption', p_now),
             (p_id, p_campaign_id, 'campaign_budget', -p_discount_minor, p_currency, 'redemption', p_now);
      INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
      VALUES (p_event_id, 'redemption.created', p_id, jsonb_build_object('redemption', to_jsonb(v_redemption)), p_now);
      RETURN jsonb_build_object('outcome', 'redeemed', 'redemption', to_jsonb(v_redemption));
    EXCEPTION WHEN SQLSTATE 'PGREF' THEN
      RETURN jsonb_build_object('outcome', 'refused', 'reason', SQLERRM);
    END;
  END $fn$`,

  /*
   * Roll back. The status flip is the guard: only the call that moves the row from 'redeemed' to
   * 'rolled_back' restores the counters, so repeats and concurrent rollbacks restore exactly once.
   */
  `CREATE FUNCTION promoguard_rollback(p_id text, p_event_id text, p_reason text, p_now timestamptz)
  RETURNS jsonb LANGUAGE plpgsql AS $fn$
  DECLARE
    v_redemption redemptions%ROWTYPE;
  BEGIN
    UPDATE redemptions SET status = 'rolled_back', rolled_back_at = p_now, rollback_reason = p_reason
     WHERE id = p_id AND status = 'redeemed'
    RETURNING * INTO v_redemption;
    IF NOT FOUND THEN
      SELECT * INTO v_redemption FROM redemptions WHERE id = p_id;
      IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
      END IF;
      RETURN jsonb_build_object('outcome', 'already_rolled_back', 'redemption', to_jsonb(v_redemption));
    END IF;

    UPDATE codes SET uses = uses - 1 WHERE id = v_redemption.code_id;
    UPDATE campaigns
       SET redemptions_used = redemptions_used - 1, spent_minor = spent_minor - v_redemption.discount_minor
     WHERE id = v_redemption.campaign_id;
    UPDATE customer_usage SET uses = uses - 1
     WHERE campaign_id = v_redemption.campaign_id AND customer_id = v_redemption.customer_id;

    INSERT INTO ledger_entries (redemption_id, campaign_id, account, amount_minor, currency, entry_type, created_at)
    VALUES (p_id, v_redemption.campaign_id, 'promo_expense', -v_redemption.discount_minor, v_redemption.currency, 'reversal', p_now),
           (p_id, v_redemption.campaign_id, 'campaign_budget', v_redemption.discount_minor, v_redemption.currency, 'reversal', p_now);
    INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
    VALUES (p_event_id, 'redemption.rolled_back', p_id, jsonb_build_object('redemption', to_jsonb(v_redemption)), p_now);
    RETURN jsonb_build_object('outcome', 'rolled_back', 'redemption', to_jsonb(v_redemption));
  END $fn$`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}
