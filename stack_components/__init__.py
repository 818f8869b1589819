"""stack_components"""
