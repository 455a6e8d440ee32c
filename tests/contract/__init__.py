"""dredd 14 run against the v3 contract (shared/spec/api.apib)."""
