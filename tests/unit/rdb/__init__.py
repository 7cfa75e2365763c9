"""Unit tests of elasticache_migrate.rdb, one module per package part."""
