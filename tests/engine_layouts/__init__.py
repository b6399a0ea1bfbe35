"""Tests of the layouts past one server: Citus and TimescaleDB, from ../shared/engines."""
