"""Tests of pglog._table, module by module."""
