/**
 * The simulator's records: who acted (actors, labelled honest or abuse), what they tried (attempts, each
 * with its label, outcome and the money at stake), and what a scenario is.
 */
import type { AttemptKind, Outcome } from './outcomes.js';

export type Label = 'honest' | 'abuse';
/**
 * `entitled`: inside a race burst, the one use the actor was entitled to (the first that succeeded, or
 * the first sent when none did). It counts neither as abuse nor as honest traffic: a perfect server lets
 * exactly one through, and only the others are the attack.
 */
export type AttemptLabel = Label | 'entitled';

export interface ActorRecord {
  scenario: string;
  id: string;
  label: Label;
  /** Honest customers: how many discounts they came for (and are entitled to). */
  entitledDiscounts: number;
}

export interface AttemptRecord {
  /** Order in which attempts finished, over the whole run. */
  seq: number;
  scenario: string;
  label: AttemptLabel;
  /** The customer (honest) or attacker the attempt belongs to. */
  actor: string;
  kind: AttemptKind;
  outcome: Outcome;
  reason: string | null;
  /** The last HTTP status (0: no answer). */
  status: number;
  /** Saw a 428 challenge (passed or not). */
  challenged: boolean;
  /**
   * Minor units this attempt would hand out if it went through (the discount, the coupon, the credited
   * points' worth); 0 for probes such as validations. When it did go through, the amount granted.
   */
  valueAtStakeMinor: number;
  /** Minor units actually granted (allowed or held). */
  grantedMinor: number;
  /** The risk decision the server attached: its id (stored for redemptions), action and rules. */
  decision: { id: string | null; action: string; rules: string[] } | null;
  httpCalls: number;
  latenciesMs: number[];
  /** Milliseconds after the traffic started when the attempt was sent. */
  atMs: number;
  /** Race bursts: the id shared by the attempts fired together. */
  burst: string | null;
  /** The redemption a redeem attempt made (allowed or held); null otherwise. */
  redemptionId: string | null;
  /**
   * Granted unflagged, then put on hold for review before the run ended (a later redemption's rule
   * held it along: `hold_with`); its outcome is then `held`.
   */
  heldAfterwards: boolean;
}

export interface ScenarioInfo {
  name: string;
  label: Label;
  /** One line for `--list`. */
  summary: string;
  /** The use case of the product documents it models. */
  models: string;
}
