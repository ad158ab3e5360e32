/**
 * Bench data, made through the real HTTP API (the same validation, services and SQL as production):
 * a checkout key, `campaigns` active campaigns each with a generated batch of single-use codes, and
 * one campaign with a public hot code and a huge cap.
 */

export const SPREAD_NAME = 'bench spread';
export const HOT_NAME = 'bench hot';
export const HOT64_NAME = 'bench hot64';
export const HOT_CODE = 'BENCHHOT';
export const HOT_CAP = 2_000_000_000;
export const DISCOUNT_MINOR = 500;

const STARTS_AT = '2020-01-01T00:00:00Z';

/** Run `work(i)` for i in [0, count) with at most `parallel` in flight. */
async function inParallel(count, parallel, work) {
  const results = new Array(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await work(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane));
  return results;
}

export async function createCheckoutKey(admin) {
  const created = await admin.must(201, 'POST', '/v1/api-keys', {
    name: 'bench checkout',
    scopes: ['checkout'],
  });
  return created.secret;
}

/** The prefix of the i-th spread campaign's codes. */
export const spreadPrefix = (i) => `S${String(i).padStart(3, '0')}`;

/** Another batch for a spread campaign, same prefix (a top-up between repeats). */
export async function generateMore(admin, campaignId, i, count) {
  await admin.must(201, 'POST', `/v1/campaigns/${campaignId}/codes`, {
    generate: { count, prefix: spreadPrefix(i) },
  });
}

export async function createSpread(admin, { campaigns, codesPerCampaign }) {
  return inParallel(campaigns, 4, async (i) => {
    const campaign = await admin.must(201, 'POST', '/v1/campaigns', {
      name: `${SPREAD_NAME} ${String(i).padStart(3, '0')}`,
      currency: 'USD',
      status: 'active',
      starts_at: STARTS_AT,
      discount: { type: 'fixed_amount', amount_minor: DISCOUNT_MINOR },
      per_customer_cap: 1,
    });
    // One batch per campaign, each with its own prefix, as marketing would generate them.
    await generateMore(admin, campaign.id, i, codesPerCampaign);
    return campaign.id;
  });
}

/** An active campaign with one public code; `cap` redemptions in all. */
export async function createHot(admin, { name, code, cap }) {
  const campaign = await admin.must(201, 'POST', '/v1/campaigns', {
    name,
    currency: 'USD',
    status: 'active',
    starts_at: STARTS_AT,
    discount: { type: 'fixed_amount', amount_minor: DISCOUNT_MINOR },
    redemption_cap: cap,
  });
  await admin.must(201, 'POST', `/v1/campaigns/${campaign.id}/codes`, { code });
  return campaign.id;
}
