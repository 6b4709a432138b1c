// Identity of every stored object. Applied before every import; IF NOT EXISTS makes re-runs no-ops.
CREATE CONSTRAINT account_id_unique IF NOT EXISTS
FOR (a:Account) REQUIRE a.account_id IS UNIQUE;

// Transfers are relationships; their id is unique across the graph (re-imports stay idempotent).
CREATE CONSTRAINT transfer_id_unique IF NOT EXISTS
FOR ()-[t:TRANSFERRED]-() REQUIRE t.transfer_id IS UNIQUE;

CREATE CONSTRAINT ring_id_unique IF NOT EXISTS
FOR (g:Ring) REQUIRE g.ring_id IS UNIQUE;

// The write-sequence counter (one node) that stamps every write batch.
CREATE CONSTRAINT meta_key_unique IF NOT EXISTS
FOR (m:Meta) REQUIRE m.key IS UNIQUE;
