"""SSH host-key analysis (issue 7): batch GCD and weekly key statistics.

Pure functions only: no Beam, no files. A Beam stage gathers one week's key
observations and calls ``stats.week_key_stats`` / ``stats.key_churn``.
"""
