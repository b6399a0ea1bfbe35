"""Tests of pglog._web, module by module."""
