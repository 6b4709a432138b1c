// Indexes behind the read paths: label/score filters, ring queues, time-bounded transfer lists.
CREATE INDEX account_label IF NOT EXISTS FOR (a:Account) ON (a.label);
CREATE INDEX account_model_version IF NOT EXISTS FOR (a:Account) ON (a.model_version);
CREATE INDEX account_fraud_probability IF NOT EXISTS FOR (a:Account) ON (a.fraud_probability);
CREATE INDEX transfer_ts IF NOT EXISTS FOR ()-[t:TRANSFERRED]-() ON (t.ts);
CREATE INDEX ring_status IF NOT EXISTS FOR (g:Ring) ON (g.status);
CREATE INDEX ring_score IF NOT EXISTS FOR (g:Ring) ON (g.score);
CREATE INDEX account_version_id IF NOT EXISTS FOR (v:AccountVersion) ON (v.account_id);
