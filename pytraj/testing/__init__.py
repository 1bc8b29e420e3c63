"""Test helpers for pytraj and for code built on it: comparisons and Hypothesis strategies."""
