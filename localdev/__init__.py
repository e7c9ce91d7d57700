"""Local stand-ins for AWS services the emulator (moto) lacks, speaking their real wire protocols.

Used by `make run`, the end-to-end tests and the benchmarks; never imported by the platform itself,
so nothing here can reach a production deployment.
"""
