-- Periods a campaign expects to redeem fast (flash sales): read by the spike alert and the detectors.
ALTER TABLE campaigns ADD COLUMN planned_peaks jsonb NOT NULL DEFAULT '[]'::jsonb;
