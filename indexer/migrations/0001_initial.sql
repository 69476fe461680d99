-- The indexer's projection. Runs with search_path set to the indexer's schema; every table is
-- written by the indexer only, in transactions that also move its checkpoint.

CREATE TABLE checkpoints (
    source       text PRIMARY KEY,            -- 'chain:<chain id>' or 'bus:<name>'
    chain_id     bigint,
    block_number bigint NOT NULL,             -- last block whose rows are all in (-1: none)
    block_hash   bytea,
    ledger_seq   bigint NOT NULL DEFAULT 0,   -- ledger head after that block (0: none)
    ledger_head  bytea,
    bus_xid      bigint NOT NULL DEFAULT 0,   -- for 'bus:' sources: the consumed position
    bus_id       bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE blocks (
    chain_id    bigint NOT NULL,
    number      bigint NOT NULL,
    hash        bytea NOT NULL,
    parent_hash bytea NOT NULL,
    time        timestamptz NOT NULL,
    log_count   integer NOT NULL,
    PRIMARY KEY (chain_id, number)
);
CREATE INDEX blocks_time ON blocks (chain_id, time);

CREATE TABLE ledger_records (
    chain_id       bigint NOT NULL,
    seq            bigint NOT NULL,
    block_number   bigint NOT NULL,
    block_hash     bytea NOT NULL,
    tx_hash        bytea NOT NULL,
    log_index      integer NOT NULL,
    actor          bytea NOT NULL,
    event_type     text NOT NULL,
    nonce          numeric(20, 0) NOT NULL,
    scheme         smallint NOT NULL,
    attestation_id bytea NOT NULL,
    data_hash      bytea NOT NULL,
    previous_hash  bytea NOT NULL,
    record_hash    bytea NOT NULL,
    time           timestamptz NOT NULL,
    delta          bytea NOT NULL,           -- the exact bytes dataHash commits to
    fund           text,                     -- ISIN named by the delta, if any
    investor       text,                     -- pseudonymous investor (the sender of a transfer)
    counterparty   text,                     -- the receiver of a transfer
    reference      text,                     -- order, transfer or distribution reference
    finding        text,                     -- why the delta fails its schema (NULL: it holds)
    PRIMARY KEY (chain_id, seq)
);
CREATE INDEX ledger_records_type ON ledger_records (event_type, seq);
CREATE INDEX ledger_records_actor ON ledger_records (actor, seq);
CREATE INDEX ledger_records_fund ON ledger_records (fund, seq) WHERE fund IS NOT NULL;
CREATE INDEX ledger_records_investor ON ledger_records (investor, seq) WHERE investor IS NOT NULL;
CREATE INDEX ledger_records_counterparty ON ledger_records (counterparty, seq)
    WHERE counterparty IS NOT NULL;
CREATE INDEX ledger_records_reference ON ledger_records (reference) WHERE reference IS NOT NULL;
CREATE INDEX ledger_records_block ON ledger_records (chain_id, block_number);

-- One row per change of a holder's balance: 'units' (the CeFi register, from the ledger) or
-- 'token' (ERC-3643 balances, from Transfer events). balance is the holder's balance after it.
CREATE TABLE balance_changes (
    kind         text NOT NULL,
    chain_id     bigint NOT NULL,
    block_number bigint NOT NULL,
    ordinal      bigint NOT NULL,               -- ledger seq, or log index
    leg          smallint NOT NULL,             -- 0 debit/only leg, 1 credit leg
    asset        text NOT NULL,                 -- ISIN, or token address (0x...)
    holder       text NOT NULL,                 -- investor pseudonym, or wallet (0x...)
    amount       numeric NOT NULL,
    balance      numeric NOT NULL,
    time         timestamptz NOT NULL,
    PRIMARY KEY (kind, chain_id, block_number, ordinal, leg)
);
CREATE INDEX balance_changes_register
    ON balance_changes (kind, asset, holder, block_number DESC, ordinal DESC, leg DESC);
CREATE INDEX balance_changes_holder ON balance_changes (kind, holder, block_number, ordinal);

CREATE TABLE balances (
    kind         text NOT NULL,
    chain_id     bigint NOT NULL,
    asset        text NOT NULL,
    holder       text NOT NULL,
    balance      numeric NOT NULL,
    block_number bigint NOT NULL,
    PRIMARY KEY (kind, chain_id, asset, holder)
);
CREATE INDEX balances_holder ON balances (kind, holder);

CREATE TABLE nav_history (
    chain_id          bigint NOT NULL,
    seq               bigint NOT NULL,
    block_number      bigint NOT NULL,
    isin              text NOT NULL,
    nav_date          date NOT NULL,
    nav               numeric NOT NULL,
    currency          text NOT NULL,
    net_assets        numeric,
    units_outstanding numeric,
    time              timestamptz NOT NULL,
    PRIMARY KEY (chain_id, seq)
);
CREATE INDEX nav_history_isin ON nav_history (isin, nav_date, seq);

CREATE TABLE distributions (
    chain_id     bigint NOT NULL,
    reference    text NOT NULL,
    isin         text NOT NULL,
    seq          bigint NOT NULL,
    block_number bigint NOT NULL,
    PRIMARY KEY (chain_id, reference)
);
CREATE INDEX distributions_block ON distributions (chain_id, block_number);

-- Ledger records that point at a token-chain transaction (TOKEN_MINTED, TOKEN_BURNED,
-- TOKEN_FORCED_TRANSFER), to be matched with token_transfers.
CREATE TABLE bridge_links (
    chain_id     bigint NOT NULL,
    seq          bigint NOT NULL,
    block_number bigint NOT NULL,
    kind         text NOT NULL,
    token_chain  bigint NOT NULL,
    token        bytea NOT NULL,
    tx_hash      bytea NOT NULL,
    amount       numeric NOT NULL,
    PRIMARY KEY (chain_id, seq)
);
CREATE INDEX bridge_links_tx ON bridge_links (token_chain, tx_hash);
CREATE INDEX bridge_links_block ON bridge_links (chain_id, block_number);

CREATE TABLE token_transfers (
    chain_id     bigint NOT NULL,
    block_number bigint NOT NULL,
    log_index    integer NOT NULL,
    tx_hash      bytea NOT NULL,
    token        bytea NOT NULL,
    from_addr    bytea NOT NULL,
    to_addr      bytea NOT NULL,
    amount       numeric(78, 0) NOT NULL,
    time         timestamptz NOT NULL,
    PRIMARY KEY (chain_id, block_number, log_index)
);
CREATE INDEX token_transfers_token ON token_transfers (token, block_number, log_index);
CREATE INDEX token_transfers_from ON token_transfers (from_addr, block_number, log_index);
CREATE INDEX token_transfers_to ON token_transfers (to_addr, block_number, log_index);
CREATE INDEX token_transfers_tx ON token_transfers (chain_id, tx_hash);

-- Every other ERC-3643 / ONCHAINID event the indexer knows, its arguments as JSON.
CREATE TABLE token_events (
    chain_id     bigint NOT NULL,
    block_number bigint NOT NULL,
    log_index    integer NOT NULL,
    tx_hash      bytea NOT NULL,
    contract     bytea NOT NULL,
    event        text NOT NULL,
    args         jsonb NOT NULL,
    time         timestamptz NOT NULL,
    PRIMARY KEY (chain_id, block_number, log_index)
);
CREATE INDEX token_events_contract ON token_events (contract, event, block_number);
CREATE INDEX token_events_event ON token_events (event, block_number);

-- Domain events from the TA services' outbox (docs/indexer.md has the contract). Personal
-- data travels only in `personal`, which erasure clears; it never reaches ClickHouse.
CREATE TABLE domain_events (
    xid          bigint NOT NULL,
    id           bigint NOT NULL,
    topic        text NOT NULL,
    event_type   text NOT NULL,
    aggregate_id text NOT NULL,
    subject      text,
    payload      jsonb NOT NULL,
    personal     jsonb,
    occurred_at  timestamptz NOT NULL,
    erased_at    timestamptz,
    PRIMARY KEY (xid, id)
);
CREATE UNIQUE INDEX domain_events_id ON domain_events (id);
CREATE INDEX domain_events_aggregate ON domain_events (aggregate_id, xid, id);
CREATE INDEX domain_events_subject ON domain_events (subject) WHERE subject IS NOT NULL;

-- API credentials: one per organisation and role. Only the SHA-256 of a token is kept.
CREATE TABLE api_credentials (
    id           bigserial PRIMARY KEY,
    organisation text NOT NULL,
    role         text NOT NULL CHECK (role IN ('observer', 'operator')),
    token_sha256 bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
