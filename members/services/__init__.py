"""Every write on programs, members and API keys, one module per subject: `members` (enrolment, details,
status), `gdpr` (erasure), `api_keys`, `programs`, `idempotency` (Idempotency-Key records of the API).
The identifiers' normalisers live in `members.identifiers` (pure functions). Import from the module itself."""
