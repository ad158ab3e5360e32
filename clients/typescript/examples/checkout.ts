/**
 * A checkout backend's use of the client: validate a code against the cart, redeem it with an
 * Idempotency-Key kept with the order, roll it back when the order is cancelled.
 */
import { createPromoguardClient, idempotent, newIdempotencyKey, type Schema, unwrap } from '../src/index.js';

type Cart = Schema<'CheckoutBody'>['cart'];

export async function applyCoupon(baseUrl: string, apiKey: string, code: string, cart: Cart) {
  const client = createPromoguardClient({ baseUrl, credential: apiKey });
  const customer = { id: 'customer-42' };

  const { data: validation, error } = await client.POST('/v1/validations', {
    body: { code, customer, cart },
  });
  if (error) return { applied: false as const, reason: `${error.code}: ${error.title}` };
  if (!validation.valid) return { applied: false as const, reason: validation.message };

  // Stored with the order: a retry after a timeout sends the same key and gets the same redemption.
  const key = newIdempotencyKey();
  const redemption = await unwrap(
    client.POST('/v1/redemptions', {
      params: { header: idempotent(key) },
      body: { code, customer, cart, order_id: 'order-1001' },
    }),
  );
  return { applied: true as const, redemptionId: redemption.id, discountMinor: redemption.discount_minor };
}

export async function cancelOrder(baseUrl: string, apiKey: string, redemptionId: string) {
  const client = createPromoguardClient({ baseUrl, credential: apiKey });
  return unwrap(
    client.POST('/v1/redemptions/{id}/rollback', {
      params: { path: { id: redemptionId } },
      body: { reason: 'order cancelled' },
    }),
  );
}
