"""The data path from the source's RDB to S3: chunk sources → one sink (check, local copy, S3 multipart).

::

    chunks.py   where the bytes come from: a container (Docker API archive), a host file, the local copy
                (the replication stream is elasticache_migrate.source.replication's ReplicationStream)
    check.py    RdbStreamCheck: header, SHA-256, CRC-64 of the bytes as they go by
    parts.py    the one part-size calculator; parts are windows of the local copy (FileWindow)
    sink.py     the one sink: check → local copy → S3 parts → verdict → complete (write_checked, stream_upload,
                upload_copy)
    verdict.py  the structure walk and engine verdict on the local copy, before the object is completed
    s3.py       object facts: extra args, head, sha tag, already uploaded
    extract.py  engines of extract (local copy only) and extract-upload (copy + S3 in one pass)
    upload.py   engine of upload (the checked local copy to S3)
    sync.py     engine of sync-upload (SYNC straight into the sink; SyncUnavailable when it cannot be)
    resume.py   engine of reuse-snapshot (what an earlier run left that is still valid)
    paths.py    which path a run takes (pure)
    grant.py    ElastiCache's read grant: who it is, the planners, the S3 calls
"""
