"""Tests of vssr.weights."""
