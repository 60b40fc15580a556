-- Ceiling of POST /api/pos/v1/vouchers/redeem/: lock the voucher, mark it redeemed, its event (bench/till.py).
-- Vouchers of the benchmark's own pool (redeemed again and again: a ceiling of the work, not of the rules).
\set voucher random(:vlo, :vhi)
\set n :n + 1
BEGIN;
SELECT id, member_id AS vmember, value FROM rewards_voucher WHERE id = :voucher FOR UPDATE \gset
UPDATE rewards_voucher
   SET status = 'redeemed', redeemed_at = now(), redeemed_reference = 'PGB-' || :run::text || '-' || :client_id::text,
       redeemed_discount = value, redeem_key = 'PGB-' || :run::text || '-' || :client_id::text || '-' || :n::text
 WHERE id = :voucher;
INSERT INTO members_outboxevent (event_id, program_id, member_id, type, version, data, occurred_at, created_at)
VALUES ('evt_' || md5(random()::text), :program, :vmember, 'voucher.redeemed', 1,
        jsonb_build_object('voucher_id', :voucher::bigint, 'reference', 'PGB', 'discount', '5.00'), now(), now());
COMMIT;
