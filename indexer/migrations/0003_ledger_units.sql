-- The units a record moves (its delta's "units" field), as a number: flows and AUM are sums of
-- it, which ClickHouse then reads as a column instead of parsing every delta.
ALTER TABLE ledger_records ADD COLUMN units numeric;
