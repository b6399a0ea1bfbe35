"""Tests of pglog._writer, module by module."""
