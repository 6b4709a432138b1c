// Transfer outcomes and the review queue (issue 13): one node per labelled transfer, one per
// review item; IF NOT EXISTS makes re-runs no-ops.
CREATE CONSTRAINT transfer_label_id_unique IF NOT EXISTS
FOR (l:TransferLabel) REQUIRE l.transfer_id IS UNIQUE;

CREATE CONSTRAINT review_id_unique IF NOT EXISTS
FOR (r:Review) REQUIRE r.review_id IS UNIQUE;

CREATE INDEX review_status IF NOT EXISTS FOR (r:Review) ON (r.status, r.created_at);
