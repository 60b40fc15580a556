"""Short dates in the admin as ISO 8601 (2026-12-07), as its date inputs take them.

Django's English default is the US 12/07/2026, which a manager in Prague or London reads as the 12th of July.
Other formats stay Django's English ones ("Dec. 7, 2026, 3:15 p.m." in lists is unambiguous).
"""

SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
