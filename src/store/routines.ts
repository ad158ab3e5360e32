/**
 * The database functions and triggers, in their current form. Tables change through numbered
 * migrations; these are re-applied whenever their text changes (a "repeatable migration"), under an
 * advisory lock so that nodes starting together apply them once. One definition of each, here.
 *
 * Every function that changes a cap follows one rule: each counter moves by one conditional statement
 * (`… WHERE used < cap`), the first refusal raises PGREF inside an inner block, which undoes everything
 * done before it and comes back as a value. Each is one database call: no row lock outlives it.
 */
import { createHash } from 'node:crypto';
import { type Kysely, sql } from 'kysely';

export const SHAPE_LOCK_KEY = 7302;
const ROUTINES_LOCK_KEY = 7303;

/*
 * The hot functions keep one plan per statement per connection. Left to itself, PostgreSQL's plan
 * cache re-plans a function's statements on every call whenever a plan made for the actual values
 * looks cheaper than the generic one — and with NULL arguments (a new customer has no person) it
 * always does: re-planning the context read's seven subqueries was three quarters of its cost
 * (0.31 → 0.10 ms a call, measured in a loop on the bench's data). Every statement here is an indexed
 * lookup whose generic plan is the right plan.
 */
const PLANNED_ONCE = 'SET plan_cache_mode = force_generic_plan';

interface Routine {
  name: string;
  statements: string[];
}

/** Drop every overload of a function, so a changed signature replaces the old one instead of adding one. */
const dropAll = (name: string) => `DO $do$
  DECLARE r record;
  BEGIN
    FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE p.proname = '${name}' AND n.nspname = current_schema() LOOP
      EXECUTE 'DROP FUNCTION ' || r.sig;
    END LOOP;
  END $do$`;

const immutable = (table: string): Routine => ({
  name: `${table}_immutable`,
  statements: [
    `DROP TRIGGER IF EXISTS ${table}_immutable ON ${table}`,
    `CREATE TRIGGER ${table}_immutable BEFORE UPDATE OR DELETE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION promoguard_immutable()`,
  ],
});

export const ROUTINES: Routine[] = [
  {
    // Ledgers are append-only: a correction is a new (reversing) entry, never an edit.
    name: 'promoguard_immutable',
    statements: [
      `CREATE OR REPLACE FUNCTION promoguard_immutable() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        RAISE EXCEPTION '% rows are immutable; write a reversing entry instead', TG_TABLE_NAME;
      END $fn$`,
    ],
  },
  immutable('ledger_entries'),
  immutable('points_movements'),
  {
    // The same Luhn mod 32 as src/domain/codes.ts (a test holds the two to each other).
    name: 'promoguard_luhn32_valid',
    statements: [
      `CREATE OR REPLACE FUNCTION promoguard_luhn32_valid(symbols text) RETURNS boolean
       LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
      DECLARE
        alphabet constant text := '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';
        factor integer := 1;
        total integer := 0;
        v integer;
        addend integer;
      BEGIN
        IF length(symbols) < 2 THEN RETURN false; END IF;
        FOR i IN REVERSE length(symbols)..1 LOOP
          v := strpos(alphabet, substr(symbols, i, 1)) - 1;
          IF v < 0 THEN RETURN false; END IF;
          addend := factor * v;
          total := total + addend / 32 + addend % 32;
          factor := 3 - factor;
        END LOOP;
        RETURN total % 32 = 0;
      END $fn$`,
    ],
  },
  {
    /*
     * The check-symbol shortcut refuses, without a database read, a code with a generated batch's
     * shape (its prefix, its length, only code-alphabet symbols after the prefix) that fails the
     * batch's check. That is sound only if no stored code is like that, on any node. So a code
     * inserted outside a batch is refused here if it has some batch's shape and passes no such
     * batch's check; and new batches (exclusive) and these inserts (shared) are ordered by one
     * advisory lock, so a batch and a clashing code never both commit.
     */
    name: 'promoguard_codes_shape_guard',
    statements: [
      `CREATE OR REPLACE FUNCTION promoguard_codes_shape_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF NEW.batch_id IS NOT NULL THEN RETURN NEW; END IF;
        PERFORM pg_advisory_xact_lock_shared(${SHAPE_LOCK_KEY});
        IF EXISTS (SELECT 1 FROM code_batches b
                    WHERE starts_with(NEW.normalized, b.prefix)
                      AND length(NEW.normalized) = length(b.prefix) + b.random_length + 1
                      AND substr(NEW.normalized, length(b.prefix) + 1) ~ '^[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]+$')
           AND NOT EXISTS (SELECT 1 FROM code_batches b
                    WHERE starts_with(NEW.normalized, b.prefix)
                      AND length(NEW.normalized) = length(b.prefix) + b.random_length + 1
                      AND promoguard_luhn32_valid(substr(NEW.normalized, length(b.prefix) + 1))) THEN
          RAISE EXCEPTION USING ERRCODE = 'PGSHP', MESSAGE = 'code has the shape of a generated batch',
            DETAIL = NEW.normalized;
        END IF;
        RETURN NEW;
      END $fn$`,
      'DROP TRIGGER IF EXISTS codes_shape_guard ON codes',
      `CREATE TRIGGER codes_shape_guard BEFORE INSERT ON codes
        FOR EACH ROW EXECUTE FUNCTION promoguard_codes_shape_guard()`,
    ],
  },
  {
    /*
     * Redeem. Locks in one fixed order, cold rows first and the hot ones (code, campaign) last so they
     * are held as briefly as possible: the new redemption row (its idempotency key), the identity
     * nodes (sorted), the person's and the customer's usage, the partner cap, the code, the campaign,
     * the campaign's current minute. The rollback follows the same order, so the two never deadlock.
     * The caps passed in belong to campaign version p_campaign_version; the campaign UPDATE checks that
     * version, so none of them can be stale.
     */
    name: 'promoguard_redeem',
    statements: [
      dropAll('promoguard_redeem'),
      `CREATE FUNCTION promoguard_redeem(
        p_id text, p_event_id text, p_idempotency_key text, p_fingerprint text,
        p_code_id text, p_campaign_id text, p_campaign_version integer,
        p_customer_id text, p_order_id text, p_currency text,
        p_subtotal_minor bigint, p_discount_minor bigint, p_now timestamptz,
        p_per_customer_cap integer, p_per_person_cap integer, p_throttle_per_minute integer,
        p_partner text, p_person_candidate text, p_identity_keys text[], p_context jsonb,
        p_decision jsonb, p_review boolean
      ) RETURNS jsonb LANGUAGE plpgsql ${PLANNED_ONCE} AS $fn$
      DECLARE
        v_redemption redemptions%ROWTYPE;
        v_campaign campaigns%ROWTYPE;
        v_code codes%ROWTYPE;
        v_persons text[];
        v_person text;
        -- A decision without an id takes the redemption's (same ULID, prefix dec_).
        v_decision_id text := CASE WHEN p_decision IS NOT NULL
                                   THEN COALESCE(p_decision->>'id', 'dec_' || substr(p_id, 5)) END;
      BEGIN
        BEGIN
          INSERT INTO redemptions (id, idempotency_key, request_fingerprint, campaign_id, code_id, customer_id,
                                   order_id, currency, subtotal_minor, discount_minor, status, created_at, context,
                                   review_status, decision_id)
          VALUES (p_id, p_idempotency_key, p_fingerprint, p_campaign_id, p_code_id, p_customer_id,
                  p_order_id, p_currency, p_subtotal_minor, p_discount_minor, 'redeemed', p_now, p_context,
                  CASE WHEN p_review THEN 'pending' END, v_decision_id)
          ON CONFLICT (idempotency_key) DO NOTHING
          RETURNING * INTO v_redemption;
          IF NOT FOUND THEN
            SELECT * INTO v_redemption FROM redemptions WHERE idempotency_key = p_idempotency_key;
            RETURN jsonb_build_object('outcome', 'replayed', 'redemption', to_jsonb(v_redemption) - 'context');
          END IF;

          IF cardinality(p_identity_keys) > 0 THEN
            -- Link everything seen together into one person (merging persons), then count per person.
            INSERT INTO identity_nodes (key, person_id, first_seen)
            SELECT k, p_person_candidate, p_now FROM unnest(p_identity_keys) AS k ORDER BY k
            ON CONFLICT (key) DO NOTHING;
            SELECT array_agg(DISTINCT person_id) INTO v_persons
              FROM (SELECT person_id FROM identity_nodes WHERE key = ANY (p_identity_keys) ORDER BY key FOR UPDATE) n;
            SELECT min(p) INTO v_person FROM unnest(v_persons) AS p;
            IF cardinality(v_persons) > 1 THEN
              -- Lock every node of the persons being merged in key order first: two merges touching
              -- the same persons then queue instead of deadlocking.
              PERFORM 1 FROM identity_nodes WHERE person_id = ANY (v_persons) ORDER BY key FOR UPDATE;
              UPDATE identity_nodes SET person_id = v_person
               WHERE person_id = ANY (v_persons) AND person_id <> v_person;
              INSERT INTO person_usage AS pu (campaign_id, person_id, uses)
              SELECT campaign_id, v_person, sum(uses) FROM person_usage
               WHERE person_id = ANY (v_persons) AND person_id <> v_person GROUP BY campaign_id ORDER BY campaign_id
              ON CONFLICT (campaign_id, person_id) DO UPDATE SET uses = pu.uses + EXCLUDED.uses;
              DELETE FROM person_usage WHERE person_id = ANY (v_persons) AND person_id <> v_person;
            END IF;
            INSERT INTO identity_edges AS e (customer_id, identifier_key, first_seen, last_seen)
            SELECT p_customer_id, k, p_now, p_now FROM unnest(p_identity_keys) AS k
             WHERE NOT starts_with(k, 'customer:') ORDER BY k
            ON CONFLICT (customer_id, identifier_key) DO UPDATE SET last_seen = p_now;
            INSERT INTO person_usage AS pu (campaign_id, person_id, uses) VALUES (p_campaign_id, v_person, 1)
            ON CONFLICT (campaign_id, person_id) DO UPDATE SET uses = pu.uses + 1
              WHERE p_per_person_cap IS NULL OR pu.uses < p_per_person_cap;
            IF NOT FOUND THEN
              RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'person_cap_reached';
            END IF;
            UPDATE redemptions SET person_id = v_person WHERE id = p_id RETURNING * INTO v_redemption;
          END IF;

          INSERT INTO customer_usage AS u (campaign_id, customer_id, uses)
          VALUES (p_campaign_id, p_customer_id, 1)
          ON CONFLICT (campaign_id, customer_id) DO UPDATE SET uses = u.uses + 1
            WHERE p_per_customer_cap IS NULL OR u.uses < p_per_customer_cap;
          IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'customer_cap_reached';
          END IF;

          IF p_partner IS NOT NULL THEN
            -- Every partner's use is counted, capped or not, so a cap set later starts from the truth.
            INSERT INTO partner_caps AS pc (campaign_id, partner, cap, used) VALUES (p_campaign_id, p_partner, NULL, 1)
            ON CONFLICT (campaign_id, partner) DO UPDATE SET used = pc.used + 1
              WHERE pc.cap IS NULL OR pc.used < pc.cap;
            IF NOT FOUND THEN
              RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'partner_cap_reached';
            END IF;
          END IF;

          UPDATE codes SET uses = uses + 1
           WHERE id = p_code_id AND status = 'active' AND (max_uses IS NULL OR uses < max_uses)
             AND (expires_at IS NULL OR p_now < expires_at);
          IF NOT FOUND THEN
            SELECT * INTO v_code FROM codes WHERE id = p_code_id;
            RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = CASE
              WHEN v_code.status = 'revoked' THEN 'code_revoked'
              WHEN v_code.expires_at IS NOT NULL AND p_now >= v_code.expires_at THEN 'code_expired'
              ELSE 'code_used_up' END;
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

          IF p_throttle_per_minute IS NOT NULL THEN
            INSERT INTO campaign_minute AS m (campaign_id, minute, uses)
            VALUES (p_campaign_id, date_trunc('minute', p_now), 1)
            ON CONFLICT (campaign_id, minute) DO UPDATE SET uses = m.uses + 1 WHERE m.uses < p_throttle_per_minute;
            IF NOT FOUND THEN
              RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'campaign_throttled';
            END IF;
          END IF;

          IF p_decision IS NOT NULL THEN
            -- The risk decision is kept with the redemption it let through, in the same transaction.
            INSERT INTO risk_decisions (id, created_at, operation, campaign_id, code_id, customer_id,
                                        redemption_id, action, outcome, decision)
            VALUES (v_decision_id, p_now, 'redemption', p_campaign_id, p_code_id, p_customer_id,
                    p_id, p_decision->>'action', 'redeemed', jsonb_set(p_decision, '{id}', to_jsonb(v_decision_id)));
          END IF;
          INSERT INTO ledger_entries (redemption_id, campaign_id, account, amount_minor, currency, entry_type, created_at)
          VALUES (p_id, p_campaign_id, 'promo_expense', p_discount_minor, p_currency, 'redemption', p_now),
                 (p_id, p_campaign_id, 'campaign_budget', -p_discount_minor, p_currency, 'redemption', p_now);
          INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
          VALUES (p_event_id, 'redemption.created', p_id,
                  jsonb_build_object('redemption', to_jsonb(v_redemption) - 'context'), p_now);
          -- The stored context stays in the database: the caller answers without it.
          RETURN jsonb_build_object('outcome', 'redeemed', 'redemption', to_jsonb(v_redemption) - 'context');
        EXCEPTION WHEN SQLSTATE 'PGREF' THEN
          RETURN jsonb_build_object('outcome', 'refused', 'reason', SQLERRM);
        END;
      END $fn$`,
    ],
  },
  {
    /*
     * Everything a validation or redemption decides on, read in one call. A function rather than a
     * query so that its statements' plans are cached per connection: on PGlite, which parses and plans
     * every query it is sent, planning was most of the cost of this read.
     */
    name: 'promoguard_context',
    statements: [
      dropAll('promoguard_context'),
      `CREATE FUNCTION promoguard_context(
        p_normalized text, p_customer_id text, p_key text, p_keys text[], p_currency text, p_now timestamptz
      ) RETURNS jsonb LANGUAGE plpgsql STABLE ${PLANNED_ONCE} AS $fn$
      DECLARE
        v_code codes%ROWTYPE;
        v_campaign campaigns%ROWTYPE;
        v_existing jsonb;
        v_persons text[];
      BEGIN
        IF p_key IS NOT NULL THEN
          SELECT to_jsonb(r) - 'context' INTO v_existing FROM redemptions r WHERE r.idempotency_key = p_key;
          -- A repeat is answered with what it made: nothing else is read for it.
          IF v_existing IS NOT NULL THEN
            RETURN jsonb_build_object('existing', v_existing);
          END IF;
        END IF;
        SELECT * INTO v_code FROM codes WHERE normalized = p_normalized;
        IF NOT FOUND THEN
          RETURN jsonb_build_object('existing', v_existing);
        END IF;
        SELECT * INTO v_campaign FROM campaigns WHERE id = v_code.campaign_id;
        SELECT array_agg(DISTINCT person_id) INTO v_persons FROM identity_nodes WHERE key = ANY (p_keys);
        RETURN jsonb_build_object(
          'existing', v_existing,
          'code', to_jsonb(v_code),
          'campaign', to_jsonb(v_campaign),
          'customer_uses', COALESCE((SELECT u.uses FROM customer_usage u
                                      WHERE u.campaign_id = v_campaign.id AND u.customer_id = p_customer_id), 0),
          'person_uses', CASE WHEN v_campaign.per_person_cap IS NULL THEN 0 ELSE
             COALESCE((SELECT sum(pu.uses) FROM person_usage pu
                        WHERE pu.campaign_id = v_campaign.id AND pu.person_id = ANY (v_persons)), 0) END,
          'partner_full', COALESCE((SELECT pc.cap IS NOT NULL AND pc.used >= pc.cap FROM partner_caps pc
                                     WHERE pc.campaign_id = v_campaign.id AND pc.partner = v_code.partner), false),
          'throttled', v_campaign.throttle_per_minute IS NOT NULL AND COALESCE(
             (SELECT m.uses >= v_campaign.throttle_per_minute FROM campaign_minute m
               WHERE m.campaign_id = v_campaign.id AND m.minute = date_trunc('minute', p_now)), false),
          'linked_accounts', (SELECT count(DISTINCT m.key) FROM (
             SELECT n.key FROM identity_nodes n
              WHERE starts_with(n.key, 'customer:') AND n.person_id = ANY (v_persons)
             UNION SELECT 'customer:' || p_customer_id) AS m),
          'customer_redemptions', (SELECT count(*) FROM (SELECT 1 FROM redemptions r
             WHERE r.customer_id = p_customer_id AND r.status = 'redeemed' LIMIT 1000) AS cr),
          'mean_subtotal', (SELECT avg(s.subtotal_minor) FROM (SELECT r.subtotal_minor FROM redemptions r
             WHERE r.customer_id = p_customer_id AND r.currency = p_currency AND r.status = 'redeemed'
             ORDER BY r.id DESC LIMIT 20) AS s));
      END $fn$`,
    ],
  },
  {
    /*
     * One relay pass in one call: mark the events just delivered as published, then claim the oldest
     * unpublished ones for p_lease_ms. Two relays (two nodes) never claim the same row at once
     * (SKIP LOCKED), and no transaction stays open while events are delivered: a relay that dies
     * holding a claim lets the lease run out and the events are delivered again. A function, so its
     * plans are cached (on PGlite, planning the claim was most of a pass).
     */
    name: 'promoguard_outbox_pass',
    statements: [
      dropAll('promoguard_outbox_pass'),
      `CREATE FUNCTION promoguard_outbox_pass(p_published text[], p_limit integer, p_lease_ms integer)
      RETURNS SETOF outbox LANGUAGE plpgsql ${PLANNED_ONCE} AS $fn$
      BEGIN
        IF cardinality(p_published) > 0 THEN
          UPDATE outbox SET published_at = now() WHERE id = ANY (p_published) AND published_at IS NULL;
        END IF;
        IF p_limit > 0 THEN
          RETURN QUERY
            UPDATE outbox SET claimed_until = now() + p_lease_ms * interval '1 millisecond'
             WHERE seq IN (
               SELECT o.seq FROM outbox o
                WHERE o.published_at IS NULL AND (o.claimed_until IS NULL OR o.claimed_until < now())
                ORDER BY o.seq
                LIMIT p_limit
                FOR UPDATE SKIP LOCKED)
            RETURNING *;
        END IF;
      END $fn$`,
    ],
  },
  {
    /*
     * Roll back. The status flip is the guard: only the call that moves the row from 'redeemed' to
     * 'rolled_back' restores the counters, so repeats and concurrent rollbacks restore exactly once.
     * The person's usage is restored on the person the customer belongs to now (persons merge).
     */
    name: 'promoguard_rollback',
    statements: [
      dropAll('promoguard_rollback'),
      `CREATE FUNCTION promoguard_rollback(p_id text, p_event_id text, p_reason text, p_now timestamptz)
      RETURNS jsonb LANGUAGE plpgsql AS $fn$
      DECLARE
        v_redemption redemptions%ROWTYPE;
        v_partner text;
        v_person text;
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

        IF v_redemption.person_id IS NOT NULL THEN
          -- Lock the customer's node: a merge in flight holds it until commit, so this waits and then
          -- finds the person the usage was merged into (an unlocked read could decrement a row the
          -- merge is about to sum and delete).
          SELECT person_id INTO v_person FROM identity_nodes
           WHERE key = 'customer:' || v_redemption.customer_id FOR UPDATE;
          UPDATE person_usage SET uses = uses - 1
           WHERE campaign_id = v_redemption.campaign_id AND person_id = v_person AND uses > 0;
        END IF;
        UPDATE customer_usage SET uses = uses - 1
         WHERE campaign_id = v_redemption.campaign_id AND customer_id = v_redemption.customer_id;
        SELECT partner INTO v_partner FROM codes WHERE id = v_redemption.code_id;
        IF v_partner IS NOT NULL THEN
          UPDATE partner_caps SET used = used - 1
           WHERE campaign_id = v_redemption.campaign_id AND partner = v_partner AND used > 0;
        END IF;
        UPDATE codes SET uses = uses - 1 WHERE id = v_redemption.code_id;
        UPDATE campaigns
           SET redemptions_used = redemptions_used - 1, spent_minor = spent_minor - v_redemption.discount_minor
         WHERE id = v_redemption.campaign_id;

        INSERT INTO ledger_entries (redemption_id, campaign_id, account, amount_minor, currency, entry_type, created_at)
        VALUES (p_id, v_redemption.campaign_id, 'promo_expense', -v_redemption.discount_minor,
                v_redemption.currency, 'reversal', p_now),
               (p_id, v_redemption.campaign_id, 'campaign_budget', v_redemption.discount_minor,
                v_redemption.currency, 'reversal', p_now);
        INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
        VALUES (p_event_id, 'redemption.rolled_back', p_id,
                jsonb_build_object('redemption', to_jsonb(v_redemption) - 'context'), p_now);
        RETURN jsonb_build_object('outcome', 'rolled_back', 'redemption', to_jsonb(v_redemption));
      END $fn$`,
    ],
  },
  {
    /*
     * Decide a redemption held for review. The flip from 'pending' is the guard: one call approves or
     * rejects, repeats find it decided and change nothing. A rejection rolls the redemption back in the
     * same transaction (promoguard_rollback restores every counter exactly once, also when the merchant
     * rolled it back already) and labels its decision; both verdicts emit an event.
     */
    name: 'promoguard_review',
    statements: [
      dropAll('promoguard_review'),
      `CREATE FUNCTION promoguard_review(
        p_id text, p_verdict text, p_label text, p_note text, p_actor text,
        p_event_id text, p_rollback_event_id text, p_now timestamptz
      ) RETURNS jsonb LANGUAGE plpgsql AS $fn$
      DECLARE
        v_redemption redemptions%ROWTYPE;
      BEGIN
        UPDATE redemptions
           SET review_status = CASE p_verdict WHEN 'approve' THEN 'approved' ELSE 'rejected' END,
               reviewed_at = p_now, reviewed_by = p_actor
         WHERE id = p_id AND review_status = 'pending'
        RETURNING * INTO v_redemption;
        IF NOT FOUND THEN
          SELECT * INTO v_redemption FROM redemptions WHERE id = p_id;
          IF NOT FOUND THEN
            RETURN jsonb_build_object('outcome', 'not_found');
          ELSIF v_redemption.review_status IS NULL THEN
            RETURN jsonb_build_object('outcome', 'not_under_review');
          END IF;
          RETURN jsonb_build_object('outcome', 'already_reviewed', 'redemption', to_jsonb(v_redemption));
        END IF;
        IF p_verdict = 'reject' THEN
          PERFORM promoguard_rollback(p_id, p_rollback_event_id, 'review rejected (' || p_label || ')', p_now);
          SELECT * INTO v_redemption FROM redemptions WHERE id = p_id;
        END IF;
        IF v_redemption.decision_id IS NOT NULL THEN
          INSERT INTO risk_labels AS l (decision_id, label, note, created_by, created_at)
          VALUES (v_redemption.decision_id, p_label, p_note, p_actor, p_now)
          ON CONFLICT (decision_id) DO UPDATE
            SET label = EXCLUDED.label, note = EXCLUDED.note, created_by = EXCLUDED.created_by,
                created_at = EXCLUDED.created_at;
        END IF;
        INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
        VALUES (p_event_id, CASE p_verdict WHEN 'approve' THEN 'review.approved' ELSE 'review.rejected' END, p_id,
                jsonb_build_object('redemption', to_jsonb(v_redemption) - 'context', 'label', p_label,
                                   'note', p_note, 'actor', p_actor), p_now);
        RETURN jsonb_build_object('outcome', 'reviewed', 'redemption', to_jsonb(v_redemption));
      END $fn$`,
    ],
  },
  {
    /*
     * Credit or debit points. Repeats of one idempotency key queue on an advisory lock held to commit;
     * the first applies, later ones (also concurrent ones) find its movement and change nothing.
     * A debit is one conditional UPDATE: the balance never goes below zero.
     */
    name: 'promoguard_points_apply',
    statements: [
      `CREATE OR REPLACE FUNCTION promoguard_points_apply(
        p_customer_id text, p_kind text, p_points bigint, p_reason text,
        p_key text, p_fingerprint text, p_event_id text, p_now timestamptz
      ) RETURNS jsonb LANGUAGE plpgsql AS $fn$
      DECLARE
        v_movement points_movements%ROWTYPE;
        v_balance bigint;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('promoguard:points:' || p_customer_id || ':' || p_key, 0));
        SELECT * INTO v_movement FROM points_movements WHERE customer_id = p_customer_id AND idempotency_key = p_key;
        IF FOUND THEN
          RETURN jsonb_build_object('outcome', 'replayed', 'movement', to_jsonb(v_movement));
        END IF;
        IF p_kind = 'credit' THEN
          INSERT INTO points_accounts AS a (customer_id, balance, created_at, updated_at)
          VALUES (p_customer_id, p_points, p_now, p_now)
          ON CONFLICT (customer_id) DO UPDATE SET balance = a.balance + p_points, updated_at = p_now
          RETURNING balance INTO v_balance;
        ELSE
          UPDATE points_accounts SET balance = balance - p_points, updated_at = p_now
           WHERE customer_id = p_customer_id AND balance >= p_points
          RETURNING balance INTO v_balance;
          IF NOT FOUND THEN
            RETURN jsonb_build_object('outcome', 'refused', 'reason', 'insufficient_points');
          END IF;
        END IF;
        INSERT INTO points_movements (customer_id, kind, points, balance_after, reason, idempotency_key,
                                      request_fingerprint, created_at)
        VALUES (p_customer_id, p_kind, CASE WHEN p_kind = 'credit' THEN p_points ELSE -p_points END, v_balance,
                p_reason, p_key, p_fingerprint, p_now)
        RETURNING * INTO v_movement;
        INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
        VALUES (p_event_id, CASE WHEN p_kind = 'credit' THEN 'points.credited' ELSE 'points.debited' END,
                p_customer_id, jsonb_build_object('movement', to_jsonb(v_movement)), p_now);
        RETURN jsonb_build_object('outcome', 'applied', 'movement', to_jsonb(v_movement));
      END $fn$`,
    ],
  },
  {
    /*
     * Convert points into a single-use coupon bound to the customer. The balance and the UTC-day total
     * each move by one conditional statement, so concurrent conversions can neither overdraw the
     * balance nor pass the daily limit. A code text that collides (unique index or shape guard) comes
     * back as 'code_collision' with nothing changed, and the caller draws a new one.
     */
    name: 'promoguard_convert',
    statements: [
      `CREATE OR REPLACE FUNCTION promoguard_convert(
        p_id text, p_event_id text, p_key text, p_fingerprint text, p_customer_id text, p_program_id text,
        p_points bigint, p_amount_minor bigint, p_currency text, p_daily_limit bigint, p_utc_day date,
        p_code_id text, p_code text, p_normalized text, p_campaign_id text, p_expires_at timestamptz,
        p_now timestamptz
      ) RETURNS jsonb LANGUAGE plpgsql AS $fn$
      DECLARE
        v_conversion conversions%ROWTYPE;
        v_code codes%ROWTYPE;
        v_balance bigint;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('promoguard:conversion:' || p_customer_id || ':' || p_key, 0));
        SELECT * INTO v_conversion FROM conversions WHERE customer_id = p_customer_id AND idempotency_key = p_key;
        IF FOUND THEN
          SELECT * INTO v_code FROM codes WHERE id = v_conversion.code_id;
          RETURN jsonb_build_object('outcome', 'replayed', 'conversion', to_jsonb(v_conversion), 'code', to_jsonb(v_code));
        END IF;
        BEGIN
          -- Points are never spent on a coupon its campaign would refuse (paused, ended, out of window).
          IF NOT EXISTS (SELECT 1 FROM campaigns WHERE id = p_campaign_id AND status = 'active'
                          AND starts_at <= p_now AND (ends_at IS NULL OR p_now < ends_at)) THEN
            RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'points_program_inactive';
          END IF;
          UPDATE points_accounts SET balance = balance - p_points, updated_at = p_now
           WHERE customer_id = p_customer_id AND balance >= p_points
          RETURNING balance INTO v_balance;
          IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'insufficient_points';
          END IF;
          IF p_points > p_daily_limit THEN
            RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'daily_conversion_limit_exceeded';
          END IF;
          INSERT INTO points_daily AS d (customer_id, utc_day, points) VALUES (p_customer_id, p_utc_day, p_points)
          ON CONFLICT (customer_id, utc_day) DO UPDATE SET points = d.points + p_points
            WHERE d.points + p_points <= p_daily_limit;
          IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'PGREF', MESSAGE = 'daily_conversion_limit_exceeded';
          END IF;
          INSERT INTO codes (id, campaign_id, code, normalized, kind, max_uses, customer_id, amount_minor,
                             expires_at, created_at)
          VALUES (p_code_id, p_campaign_id, p_code, p_normalized, 'unique', 1, p_customer_id, p_amount_minor,
                  p_expires_at, p_now)
          RETURNING * INTO v_code;
          INSERT INTO conversions (id, idempotency_key, request_fingerprint, customer_id, program_id, points,
                                   amount_minor, currency, code_id, utc_day, created_at)
          VALUES (p_id, p_key, p_fingerprint, p_customer_id, p_program_id, p_points, p_amount_minor, p_currency,
                  p_code_id, p_utc_day, p_now)
          RETURNING * INTO v_conversion;
          INSERT INTO points_movements (customer_id, kind, points, balance_after, reason, conversion_id, created_at)
          VALUES (p_customer_id, 'conversion', -p_points, v_balance, 'converted into a coupon', p_id, p_now);
          INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
          VALUES (p_event_id, 'points.converted', p_customer_id,
                  jsonb_build_object('conversion', to_jsonb(v_conversion), 'code_id', p_code_id), p_now);
          RETURN jsonb_build_object('outcome', 'converted', 'conversion', to_jsonb(v_conversion), 'code', to_jsonb(v_code));
        EXCEPTION
          WHEN SQLSTATE 'PGREF' THEN
            RETURN jsonb_build_object('outcome', 'refused', 'reason', SQLERRM);
          WHEN unique_violation OR SQLSTATE 'PGSHP' THEN
            RETURN jsonb_build_object('outcome', 'code_collision');
        END;
      END $fn$`,
    ],
  },
  {
    /*
     * Return the points of a converted coupon that expired unused (programs with refund_on_expiry).
     * The conditional flip of refunded_at is the guard: a refund happens once, whatever runs it.
     */
    name: 'promoguard_refund_expired',
    statements: [
      `CREATE OR REPLACE FUNCTION promoguard_refund_expired(p_conversion_id text, p_event_id text, p_now timestamptz)
      RETURNS jsonb LANGUAGE plpgsql AS $fn$
      DECLARE
        v_conversion conversions%ROWTYPE;
        v_balance bigint;
      BEGIN
        -- The code row is locked so a redemption in flight settles first; the minute of grace covers
        -- clocks of different nodes disagreeing about the instant of expiry.
        PERFORM 1 FROM codes k JOIN conversions c ON c.code_id = k.id WHERE c.id = p_conversion_id FOR UPDATE OF k;
        UPDATE conversions c SET refunded_at = p_now
          FROM codes k
         WHERE c.id = p_conversion_id AND c.refunded_at IS NULL AND k.id = c.code_id
           AND k.uses = 0 AND k.expires_at + interval '1 minute' <= p_now
        RETURNING c.* INTO v_conversion;
        IF NOT FOUND THEN
          RETURN jsonb_build_object('outcome', 'not_refundable');
        END IF;
        UPDATE points_accounts SET balance = balance + v_conversion.points, updated_at = p_now
         WHERE customer_id = v_conversion.customer_id
        RETURNING balance INTO v_balance;
        -- No idempotency key: that namespace belongs to callers (a credit may use any key); the
        -- refunded_at flip above is what makes the refund happen once.
        INSERT INTO points_movements (customer_id, kind, points, balance_after, reason, conversion_id, created_at)
        VALUES (v_conversion.customer_id, 'expiry_refund', v_conversion.points, v_balance,
                'coupon expired unused', v_conversion.id, p_now);
        INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
        VALUES (p_event_id, 'points.refunded', v_conversion.customer_id,
                jsonb_build_object('conversion', to_jsonb(v_conversion)), p_now);
        RETURN jsonb_build_object('outcome', 'refunded', 'conversion', to_jsonb(v_conversion));
      END $fn$`,
    ],
  },
];

function hashOf(routine: Routine): string {
  return createHash('sha256').update(routine.statements.join('\n;\n')).digest('hex');
}

/**
 * Create or replace every routine whose text differs from what the database last applied. Runs after
 * the migrations, in one transaction under an advisory lock.
 */
export async function applyRoutines(db: Kysely<unknown>): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${ROUTINES_LOCK_KEY})`.execute(trx);
    await sql`CREATE TABLE IF NOT EXISTS promoguard_routines (
      name text PRIMARY KEY, hash text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`.execute(trx);
    const applied = new Map(
      (
        await sql<{ name: string; hash: string }>`SELECT name, hash FROM promoguard_routines`.execute(trx)
      ).rows.map((r) => [r.name, r.hash]),
    );
    const changed: string[] = [];
    for (const routine of ROUTINES) {
      const hash = hashOf(routine);
      if (applied.get(routine.name) === hash) continue;
      for (const statement of routine.statements) await sql.raw(statement).execute(trx);
      await sql`INSERT INTO promoguard_routines (name, hash) VALUES (${routine.name}, ${hash})
        ON CONFLICT (name) DO UPDATE SET hash = EXCLUDED.hash, applied_at = now()`.execute(trx);
      changed.push(routine.name);
    }
    return changed;
  });
}
