"""Cohorts: the data contract, the synthetic population, the MIMIC-IV adapter, preprocessing."""

from medcoding.cohort.contract import Cohort, ContractError, load

__all__ = ["Cohort", "ContractError", "load"]
