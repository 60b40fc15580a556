-- Ceiling of POST /api/pos/v1/vouchers/validate/: the voucher (by its unique code) and its reward (bench/till.py).
\set voucher random(:vlo, :vhi)
SELECT code AS vcode FROM rewards_voucher WHERE id = :voucher \gset
SELECT v.id, v.code, v.kind, v.value, v.min_basket, v.status, v.expires_at, v.member_id, r.name
  FROM rewards_voucher v LEFT JOIN rewards_reward r ON r.id = v.reward_id
 WHERE v.program_id = :program AND v.code = :vcode;
