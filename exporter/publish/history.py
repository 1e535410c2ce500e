"""After a forget, the lake keeps no older version of a table: what was forgotten is gone.

Delta and Iceberg keep the versions a publish replaced (time travel), so a day published
before a GDPR deletion was applied would still hold its subject in the table's history, and
in files a publish killed before its commit left behind. When the build a publish reads has
applied deletions (its ledger fingerprint, ``LocalTables.forgotten``) that a table has not
been purged for, the publish, once every day is written, drops that table's history:

    Delta     VACUUM of every file the log's tombstones name, at once (the versions the
              commits replaced); then of every file the log does not reference at all,
              untouched for ``UNCOMMITTED_AGE`` (tombstones already expired from the
              checkpoints; uploads of a publish killed before its commit);
    Iceberg   the files only the older snapshots reach (data files, manifests, manifest
              lists) deleted, the files no snapshot reaches, untouched for
              ``UNCOMMITTED_AGE``, too, then every snapshot but the current expired.

The age spares the files a publish running at this moment has written and not yet committed:
nothing that publish commits ever goes missing. Last, the table records the fingerprint in
its property ``FORGOTTEN``; a kill before that purges again next time (deleting what is
already gone is no error), and a publish that finds it does nothing more. A reader reading
an older version at that moment fails rather than read what was forgotten. Parquet objects
are replaced in place (their stale objects deleted), so that format keeps no history of ours;
a versioned bucket keeps its own (its lifecycle rules are the bucket owner's).

``--keep-history`` (``[publish] keep_history``) leaves the history alone: for a lake whose
owners expire it on their own schedule.
"""

from __future__ import annotations

from datetime import timedelta

FORGOTTEN = "genesys-export.forgotten"  # the table property: the deletions purged for
# A file written by a publish and not yet committed is younger than this: uploading a day,
# or writing one Iceberg commit's files, takes seconds to minutes.
UNCOMMITTED_AGE = timedelta(hours=1)
