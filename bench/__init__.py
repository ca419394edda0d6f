"""Benchmarks of ../shared/WORKLOADS.md (`manage.py bench <workload>`) and the simulated access
node they and the logic-worker system tests use."""
