"""Online mode: a source's replication stream applied to the target while the app keeps writing (issue 13).

:mod:`.stream` (pure) turns raw RESP bytes into units; :mod:`.apply` sends them to the target.
"""
