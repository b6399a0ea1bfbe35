"""Tests of pglog._capture, module by module."""
