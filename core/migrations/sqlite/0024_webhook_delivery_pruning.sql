-- Outgoing webhooks (issue 15): settled deliveries (delivered or failed) leave the delivery log
-- after `[webhooks] keep_deliveries_days`; this index lets the pruning job find them by age
-- without reading the pending queue. Numbered 0024 after 0023 (workspace limits).

CREATE INDEX webhook_deliveries_settled ON webhook_deliveries (updated_at)
    WHERE status <> 'pending';
