// Data-subject erasure: one tombstone per erased account (a one-way digest of its id), so a
// re-import of the person is refused unless forced.
CREATE CONSTRAINT tombstone_digest_unique IF NOT EXISTS
FOR (t:Tombstone) REQUIRE t.digest IS UNIQUE;
