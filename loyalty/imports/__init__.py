"""Importing historical purchases from CSV (`python manage.py import_purchases`).

The file
- A header row names the columns: `external_id` (the customer), `occurred_at`
  and `total` are required; `purchase_id`, `store`, `channel` (pos, eshop,
  app, other; default pos) and `currency` are optional; other columns are
  ignored. Names compare without case; `--map COLUMN=FIELD` renames a column.
- `occurred_at` is ISO 8601: a date means midnight in the program's time zone,
  a date and time without offset is local time there too.
- A row without `purchase_id` gets a derived one, `csv-<hash>-<n>`: the hash
  of customer, time (UTC), total, store and channel, and n counting identical
  rows in the file (two identical coffees on one day are two purchases).
  Re-running the same file, or a file with the same rows, imports nothing
  twice: purchase ids already in the program are skipped (counted, not errors).

Validation: a row is refused, with its line number and every reason, when
the customer is empty, the time unreadable or more than 5 minutes in the
future, the total not a decimal, negative or with more than 2 decimal places,
the currency not the program's, the channel unknown, a value too long, its
purchase id repeats an earlier line, or (with points) the member is
suspended or closed. A refused row writes nothing.

Batches (`--batch-size`, default 10,000 valid rows) are read and validated
in streaming, then each one is imported in one transaction: a failure rolls
back the whole batch and stops the import; the batches before it stay, and
running the same command again goes on where it stopped. Memory is one batch
plus the purchase ids seen (about 130 bytes per row) to spot repeats.

Per batch (see `batch.py` and `posting.py`): purchases already imported are
skipped, missing members are created in one insert (enrolled at their first
purchase in the batch; no signup bonus: they did not sign up now), the
accounts are locked in primary-key order, the purchases are evaluated in time
order by the same pure rules engine and compiled ruleset as `purchase_record`,
and entries, lots, awards and purchases are inserted with COPY on PostgreSQL
(bulk_create elsewhere), then the accounts are updated in one statement. On
PostgreSQL the grown tables are ANALYZEd after batches 1, 2, 4, 8, ...: with
statistics far behind the table, lookups by purchase id turn into scans.

What the points equal: exactly what `purchase_record` would give if called
for each row in this order: batch after batch, inside a batch by time (ties
by line). Every rule kind is applied as the service applies it: first and
n-th purchase (the member's purchases so far, those in the database
included), per-purchase, daily and monthly caps (earlier awards in the
database and in the file), total budgets (locked for the batch), tier
conditions and earn multipliers, and tiers reached during the import
(promotion at once when the qualification metric over the window ending now
crosses a threshold, as for a live purchase; downgrades are left to the tier
review job, as usual). Sort the file by time for this order to be the
historical one across batches too. Members in debt, referred members before
their first purchase and their referrers go through `purchase_record`
itself, in their place in time (paying old debits, referral bonuses).

Points follow the program's policies from the purchase time: lots whose
expiry date has passed are written as such and expired by the next
`lots_expire` run; purchases within the return window are pending.

`--no-points` writes members, purchases (0 points) and the accounts'
purchase counts (first and n-th purchase rules see the history), and promotes
tiers as those purchases would (spend and purchase-count metrics); no ledger
rows. No events or webhooks are sent for imported history.
"""

from loyalty.imports.rows import ColumnsError, RowError
from loyalty.imports.run import DEFAULT_BATCH_SIZE, ImportReport, ImportStopped, purchases_import

__all__ = ["DEFAULT_BATCH_SIZE", "ColumnsError", "ImportReport", "ImportStopped", "RowError", "purchases_import"]
