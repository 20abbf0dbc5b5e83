"""Hydra config of priorl's verl entry point (a package so hydra finds it however main_ppo is imported)."""
