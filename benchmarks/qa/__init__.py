"""benchmarks.qa"""
