"""Cohorts: the data contract, the synthetic population, the MIMIC-IV adapter, preprocessing."""
