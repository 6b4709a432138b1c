// Credit data: one node per obligation, joined to its account by account_id (not by a
// relationship, so the payment network's degrees and walks never see obligations).
CREATE CONSTRAINT obligation_id_unique IF NOT EXISTS
FOR (o:Obligation) REQUIRE o.obligation_id IS UNIQUE;
CREATE INDEX obligation_account IF NOT EXISTS FOR (o:Obligation) ON (o.account_id);
