/** The one place the wall clock is read: everything else is handed a Clock, so tests can set time. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
