-- Ceiling of POST /api/pos/v1/returns/: find the purchase, lock the account, reverse one point from the purchase's
-- own lot (entry, allocation, lot, balances), the return row, the purchase's returned figures, the event
-- (bench/till.py). Purchases of the benchmark's own pool, each returned by a cent at a time.
\set purchase random(:plo, :phi)
\set n :n + 1
BEGIN;
SELECT member_id AS buyer, entry_id AS earned FROM loyalty_purchase WHERE id = :purchase \gset
SELECT available FROM loyalty_account WHERE member_id = :buyer FOR UPDATE \gset
SELECT id AS lot, pending AS lot_pending FROM loyalty_lot WHERE entry_id = :earned AND remaining >= 1 \gset
INSERT INTO loyalty_entry (program_id, member_id, kind, amount, uncovered, key, occurred_at, created_at, actor_id,
                           reason, counterpart_id, details)
VALUES (:program, :buyer, 'reverse', -1, 0, NULL, now(), now(), NULL, '', NULL,
        jsonb_build_object('return', 'PGB-' || :run::text || '-' || :client_id::text || '-' || :n::text))
RETURNING id AS entry \gset
INSERT INTO loyalty_allocation (member_id, entry_id, lot_id, amount, created_at) VALUES (:buyer, :entry, :lot, 1, now());
UPDATE loyalty_lot SET remaining = remaining - 1 WHERE id = :lot;
UPDATE loyalty_account
   SET available = available - CASE WHEN :lot_pending THEN 0 ELSE 1 END,
       pending = pending - CASE WHEN :lot_pending THEN 1 ELSE 0 END, updated_at = now()
 WHERE member_id = :buyer;
INSERT INTO loyalty_return (program_id, member_id, purchase_id, external_id, amount, eligible_amount,
                            points_reversed, lines, occurred_at, created_at, entry_id, outcome)
VALUES (:program, :buyer, :purchase, 'PGB-' || :run::text || '-' || :client_id::text || '-' || :n::text, 0.01,
        0.01, 1, '[]', now(), now(), :entry, '{}');
UPDATE loyalty_purchase SET points_reversed = points_reversed + 1, returned_total = returned_total + 0.01,
                            returned_eligible = returned_eligible + 0.01
 WHERE id = :purchase;
INSERT INTO members_outboxevent (event_id, program_id, member_id, type, version, data, occurred_at, created_at)
VALUES ('evt_' || md5(random()::text), :program, :buyer, 'points.reversed', 1,
        jsonb_build_object('points', 1, 'purchase', :purchase::bigint), now(), now());
COMMIT;
