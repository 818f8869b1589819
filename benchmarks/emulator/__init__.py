"""benchmarks.emulator"""
