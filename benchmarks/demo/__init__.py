"""benchmarks.demo"""
