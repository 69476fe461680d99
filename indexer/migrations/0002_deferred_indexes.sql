-- Secondary indexes set aside during a bulk backfill (dropped, then rebuilt in one sort each
-- when the backfill reaches the head). A row here means the index is missing on purpose.
CREATE TABLE deferred_indexes (
    name       text PRIMARY KEY,
    definition text NOT NULL,
    dropped_at timestamptz NOT NULL DEFAULT now()
);
