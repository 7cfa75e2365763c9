"""Write the RDB corpus (see :mod:`elasticache_migrate.testing.rdb_corpus`).

    python -m scripts.make_rdb_corpus [--out tests/corpus] [--only redis-3.2 ...] [--no-install]
    python -m scripts.make_rdb_corpus --matrix      # also load every file into every server, print the result
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from elasticache_migrate.testing import rdb_corpus
from elasticache_migrate.testing.binaries import KNOWN_BINARIES, BinaryUnavailable, ServerBinary, find_binary
from elasticache_migrate.testing.rdb_corpus import EXPIRE_AT_MS, MANIFEST, load_matrix, read_manifest, write_dump

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "corpus"
log = logging.getLogger("make_rdb_corpus")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=rdb_corpus.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="corpus directory (default: tests/corpus)")
    parser.add_argument("--only", nargs="+", choices=KNOWN_BINARIES, help="regenerate only these writers")
    parser.add_argument("--no-install", action="store_true", help="use cached binaries only, download nothing")
    parser.add_argument("--matrix", action="store_true", help="then load every file into every server, print it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("elasticache_migrate.testing.localredis").setLevel(logging.WARNING)

    out: Path = args.out
    manifest = read_manifest(out)
    entries = {e["writer"]: e for e in manifest["files"] if (out / e["file"]).exists()}
    binaries: list[ServerBinary] = []
    for name in KNOWN_BINARIES:
        try:
            binaries.append(find_binary(name, install=not args.no_install))
        except BinaryUnavailable as exc:
            log.warning("skipping %s: %s", name, exc)
    for binary in binaries:
        if args.only and binary.name not in args.only:
            continue
        started = time.monotonic()
        entries[binary.name] = write_dump(binary, out / f"{binary.name}.rdb")
        e = entries[binary.name]
        log.info("%-11s %-7s %s %5d bytes keys %s (%.1f s)", binary.name, binary.version, e["header"], e["size"],
                 e["keys"], time.monotonic() - started)
    manifest = {
        "generator": "python -m scripts.make_rdb_corpus",
        "note": "Not byte-repeatable: each run's random dict hash seed reorders keys and members, and the aux "
        "fields ctime/used-mem/repl-id change; the dataset itself is fixed, so sizes and key counts stay. TTLs "
        f"expire at {EXPIRE_AT_MS} ms (2100-01-01).",
        "files": [entries[n] for n in KNOWN_BINARIES if n in entries],
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("wrote %s (%d files)", out / MANIFEST, len(manifest["files"]))
    if args.matrix:
        for file, target, loaded, message in load_matrix(out, binaries):
            print(f"{file:16} -> {target:11} {'LOADED ' if loaded else 'REFUSED'} {'' if loaded else message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
